// Imported for its effect by every test helper that starts clients or servers, and required by .mocharc.json: the test
// process (and every process it spawns, which inherits the environment) keeps its data under a temporary
// $XDG_DATA_HOME of this run, removed when the run ends. Without it, a client that starts an embedded server (when the
// test's server has stopped) wrote that server's key to the real ~/.local/share/udsu-server/port-N.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const MARK = 'UDSU_TEST_DATA_HOME'

/** This run's $XDG_DATA_HOME, made on first import (a spawned test helper inherits its parent's). */
export const TEST_DATA_HOME = (() => {
  const inherited = process.env[MARK]
  if (inherited && process.env.XDG_DATA_HOME === inherited) return inherited
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-data-home-'))
  process.env.XDG_DATA_HOME = dir
  process.env[MARK] = dir
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
})()
