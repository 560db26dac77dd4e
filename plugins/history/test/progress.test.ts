// `udsu history import|export` on a terminal shows a progress bar (in tmux); piped, it prints only the result
// (the journeys check that stderr stays empty then).
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CLI, cleanupTemp, ROOT, tempDir } from '../../../test/support/processes'
import { Tmux } from '../../../frontends/tui/test/tmux'

const COUNT = 150_000

describe('history progress bar on a terminal (tmux)', function () {
  this.timeout(120_000)
  const tmux = new Tmux()
  after(() => {
    tmux.kill()
    cleanupTemp()
  })

  it('shows import and export progress while they run, then the result', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'many.json')
    const lines = Array.from({ length: COUNT }, (_, i) => {
      const at = new Date(Date.UTC(2021, 0, 1) + i * 1000).toISOString()
      return JSON.stringify({
        id: `p${i}`,
        peer: 'bob',
        from: 'bob',
        to: 'alice',
        out: false,
        text: `message ${i}`,
        sent: at,
        received: at,
      })
    })
    fs.writeFileSync(
      file,
      `{"format":"udsu-history","version":1,"owner":"alice","exported":"2026-01-01T00:00:00.000Z","messages":[\n${lines.join(',\n')}\n]}\n`,
    )
    const profile = path.join(dir, 'profile')
    const out = path.join(dir, 'out.txt')
    tmux.start(
      'progress',
      `node ${CLI} history import ${file} --profile ${profile} && node ${CLI} history export --profile ${profile} --format txt --out ${out}`,
      {
        width: 100,
        height: 10,
        cwd: ROOT,
        env: {},
      },
    )
    await tmux.waitFor('progress', /import \[[=-]+\] \d+% \d+\/150000 messages/, 'the import progress bar')
    await tmux.waitFor('progress', /export \[[=-]+\] \d+% \d+\/150000 messages/, 'the export progress bar')
    expect(await tmux.waitForExit('progress', 60_000)).to.equal(0)
    const screen = tmux.capture('progress')
    expect(screen).to.include(`imported ${file} (udsu export): 150000 added, 0 already there, 0 refused`)
    expect(screen).to.include(`exported 150000 message(s) to ${out}`)
  })
})
