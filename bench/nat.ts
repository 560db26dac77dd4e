// Median time to first message per NAT scenario: runs the lab scenario tests (test/nat) a few times and reads what
// they record. Needs root (network namespaces). `node dist/bench/nat.js [runs]` (default 3).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { median, type ScenarioResult } from '../test/nat/world'
import { ROOT } from '../test/support/processes'

function main(): number {
  const runs = Number(process.argv[2] ?? 3)
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
    process.stderr.write('usage: node dist/bench/nat.js [runs 1-50]\n')
    return 2
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'udsu-bench-nat-'))
  const file = path.join(dir, 'results.jsonl')
  try {
    const mocha = require.resolve('mocha/bin/mocha.js', { paths: [ROOT] })
    for (let run = 1; run <= runs; run++) {
      process.stderr.write(`run ${run}/${runs}…\n`)
      const result = spawnSync(
        process.execPath,
        [mocha, '--no-config', '--timeout', '180000', '--reporter', 'dot', path.join(ROOT, 'dist/test/nat/*.test.js')],
        {
          cwd: ROOT,
          env: { ...process.env, UDSU_NAT_RESULTS: file },
          stdio: ['ignore', 'ignore', 'inherit'],
          timeout: 10 * 60_000,
        },
      )
      if (result.status !== 0)
        process.stderr.write(
          `run ${run}: the scenario tests failed (exit ${result.status}); their results still count\n`,
        )
    }
    const results = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ScenarioResult)
    const byScenario = new Map<string, ScenarioResult[]>()
    for (const r of results) byScenario.set(r.scenario, [...(byScenario.get(r.scenario) ?? []), r])
    const rows = [...byScenario].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    console.log(`| scenario | path | median first message (ms) | runs | notes |\n| --- | --- | --- | --- | --- |`)
    for (const [scenario, list] of rows) {
      const paths = [...new Set(list.map((r) => r.path))].join(', ')
      const notes = list
        .map((r) => r.note)
        .filter(Boolean)
        .join('; ')
      console.log(
        `| ${scenario} | ${paths} | ${median(list.map((r) => r.firstMessageMs))} | ${list.length} | ${notes} |`,
      )
    }
    return 0
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

process.exit(main())
