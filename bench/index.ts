// `npm run bench`: runs every benchmark and prints its table. Not a test: figures depend on the machine.
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { labAvailable } from '../test/lab/lab'
import { benchReliable, formatRows } from './reliable'

/** A benchmark that is its own script, run in a fresh process so it measures alone. */
function script(name: string, args: string[] = []): void {
  const result = spawnSync(process.execPath, [path.join(__dirname, `${name}.js`), ...args], { stdio: 'inherit' })
  if (result.status !== 0) throw new Error(`bench/${name} failed (${result.status ?? result.signal})`)
}

async function main(): Promise<void> {
  console.log('end-to-end handshake: CPU per side against one native RSA-PSS signature\n')
  script('handshake', ['20'])
  console.log('\nreliable delivery: two processes on loopback, raw node:dgram against the full pipeline\n')
  console.log(formatRows(await benchReliable()))
  console.log(
    '\nhistory: SQLite in the profile against plain better-sqlite3 (UDSU_BENCH_HISTORY_MESSAGES, default 1,000,000)\n',
  )
  script('history', [process.env.UDSU_BENCH_HISTORY_MESSAGES ?? '1000000'])
  const lab = labAvailable()
  console.log('\nNAT traversal: median time to first message per lab scenario\n')
  if (lab.ok) script('nat', ['3'])
  else console.log(`  skipped: ${lab.reason} (the lab needs root, iproute2 and iptables)`)
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error)
    process.exit(1)
  },
)
