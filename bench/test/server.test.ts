// `npm run bench:server` in its quick mode: it runs to the end and prints every figure's line. Its speed is not checked.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { expect } from 'chai'

describe('bench:server (quick mode)', function () {
  this.timeout(120_000)

  it('registers every client with the real protocol and prints each figure beside the raw echo', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'server.js')], {
      env: { ...process.env, UDSU_BENCH_QUICK: '1', UDSU_BENCH_SERVER_CLIENTS: '200' },
      stdio: 'pipe',
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
    expect(code, stderr).to.equal(0)
    const line = (start: RegExp) =>
      stdout.split('\n').find((l) => start.test(l)) ?? expect.fail(`no line ${start} in:\n${stdout}`)
    expect(line(/^  registered /)).to.match(
      /^  registered 200 of 200 in [\d.]+ s \(0 failed, [\d,]+ requests resent; server online: 200\)$/,
    )
    expect(line(/^  raw UDP echo/)).to.match(
      /p50 [\d.]+ ms, p99 [\d.]+ ms; [\d.]+ µs CPU per echo = [\d,]+ echoes\/s per core/,
    )
    expect(line(/^  registrations: /)).to.match(
      /[\d,]+ registrations\/s per core; raw echo [\d,]+\/s per core \(ratio 1\/[\d.]+;/,
    )
    expect(line(/^  memory: /)).to.match(/MB RSS with 200 registered .* B RSS, -?[\d,]+ B heap per client$/)
    expect(line(/^  keepalive: /)).to.match(
      /200 clients every 15 s = [\d,]+ pings\/s; server CPU [\d.]+ % of a core \(raw echo at that rate: [\d.]+ %, ratio 1\/[\d.]+\); [\d.]+ % answered in the window; online 200$/,
    )
    expect(line(/^  introduction /)).to.match(
      /p50 [\d.]+ ms, p99 [\d.]+ ms \(50 timed, 0 unanswered\); raw echo alongside: p50 [\d.]+ ms, p99 [\d.]+ ms, \d+ lost/,
    )
    expect(line(/^  list /)).to.match(/p50 [\d.]+ ms, p99 [\d.]+ ms \(10 timed, 0 unanswered\)$/)
    const statsLine = line(/^  server stats: /)
    expect(statsLine).to.match(/; datagrams the kernel dropped at the server's full socket buffers: [\d,]+$/)
    const stats = JSON.parse(statsLine.slice('  server stats: '.length, statsLine.indexOf('}; ') + 1)) as Record<
      string,
      number
    >
    expect(stats).to.include({ registrations: 200, mappings: 200, introductions: 50, malformed: 0, limited: 0 })
  })
})
