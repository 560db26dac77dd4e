// Messages per second and latency between two processes on loopback: raw node:dgram against the full pipeline
// (udp, hole-punch, rsa with AES-GCM, reliable with acks and journals). Bounded in count and in time.
import { fork, type ChildProcess } from 'node:child_process'
import * as dgram from 'node:dgram'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fixtureProfile, startClient, startServer } from '../plugins/reliable/test/clients'

export interface Row {
  size: number
  rawPerSecond: number
  pipelinePerSecond: number
  rawP50: number
  rawP99: number
  pipelineP50: number
  pipelineP99: number
}

/** `UDSU_BENCH_SIZES=100` runs only the sizes named (comma-separated); `UDSU_BENCH_CPU_PROF=DIR` writes a CPU profile
 *  of each child process to DIR (profile the benchmark process itself with `node --cpu-prof`). */
const SIZES = process.env.UDSU_BENCH_SIZES ? process.env.UDSU_BENCH_SIZES.split(',').map(Number) : [100, 4096]
const CPU_PROF = process.env.UDSU_BENCH_CPU_PROF
/** `UDSU_BENCH_STATS=1`: both sides' link figures (the sender's after the throughput phase, the receiver's at exit). */
const STATS = process.env.UDSU_BENCH_STATS
const THROUGHPUT = { 100: 50_000, 4096: 10_000 } as Record<number, number>
/** Messages sent and not yet acknowledged at most: a few receive windows, so the path stays full, and well below the
 *  reliable plugin's outbox limit (10,000 per peer), past which sends are refused. */
const LEAD = 5000
const CHUNK = 1000
const RAW_COUNT = 200_000
const ROUND_TRIPS = 1000
const DEADLINE_MS = 60_000

function peer(mode: string, arg = ''): Promise<{ child: ChildProcess; hello: Record<string, unknown> }> {
  const execArgv = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : []
  const child = fork(path.join(__dirname, 'peers.js'), [mode, arg], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  })
  return new Promise((resolve, reject) => {
    child.once('message', (hello) => resolve({ child, hello: hello as Record<string, unknown> }))
    child.once('exit', (code) => reject(new Error(`bench peer ${mode} exited with ${code}`)))
  })
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]

/** Raw datagrams: as many as the receiver counts per second while the sender keeps the socket busy; ping-pong RTT. */
async function raw(size: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const { child, hello } = await peer('raw')
  const port = hello.port as number
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const data = Buffer.alloc(size, 2)
  const started = performance.now()
  let sent = 0
  // Bounded in-flight sends: the socket's callback says the kernel took the datagram.
  await new Promise<void>((resolve) => {
    let inFlight = 0
    const pump = () => {
      while (inFlight < 64 && sent < RAW_COUNT) {
        inFlight++
        sent++
        socket.send(data, port, '127.0.0.1', () => {
          inFlight--
          if (sent < RAW_COUNT) pump()
          else if (inFlight === 0) resolve()
        })
      }
    }
    pump()
  })
  const seconds = (performance.now() - started) / 1000
  await new Promise((resolve) => setTimeout(resolve, 200)) // the receiver drains its socket
  const counted = await new Promise<number>((resolve) => {
    child.once('message', (m) => resolve((m as { count: number }).count))
    child.send('count')
  })
  const rtts: number[] = []
  const ping = Buffer.alloc(size, 1)
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const t = performance.now()
    await new Promise<void>((resolve) => {
      socket.once('message', () => resolve())
      socket.send(ping, port, '127.0.0.1')
    })
    rtts.push(performance.now() - t)
  }
  socket.close()
  child.kill()
  rtts.sort((a, b) => a - b)
  return { perSecond: counted / seconds, p50: percentile(rtts, 50), p99: percentile(rtts, 99) }
}

/** The full pipeline: throughput until every message is acknowledged (so durably stored by the peer), and echo RTT. */
async function pipeline(size: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const { server, address } = await startServer()
  const { child } = await peer('client', address)
  const profile = fixtureProfile('alice')
  const alice = await startClient('alice', address, { profile, record: false })
  try {
    const text = 'x'.repeat(size - 40) // the envelope adds id, ts and JSON: about `size` bytes in all
    await alice.client.send('bob', text)
    await alice.until('the first receipt', () => alice.counts.receipts === 1)
    const count = THROUGHPUT[size]
    const receipts = () => alice.counts.receipts - 1
    const refused = () => alice.counts.failed > 0
    const checkRefused = () => {
      if (refused()) throw new Error('a message failed: the benchmark sent more than the outbox takes')
    }
    const started = performance.now()
    // In chunks, at most LEAD ahead of the receipts, so the sender's own queue does not hold every message at once.
    for (let sent = 0; sent < count;) {
      for (const end = Math.min(count, sent + CHUNK); sent < end; sent++) void alice.client.send('bob', text)
      await alice.until('room for the next chunk', () => refused() || receipts() >= sent + CHUNK - LEAD, DEADLINE_MS)
      checkRefused()
    }
    await alice.until(`${count} receipts`, () => refused() || receipts() >= count, DEADLINE_MS)
    checkRefused()
    const perSecond = count / ((performance.now() - started) / 1000)
    if (STATS) console.error(`alice (${size} B):`, JSON.stringify(alice.reliable().stats().peers.bob))

    const rtts: number[] = []
    for (let i = 0; i < ROUND_TRIPS / 2; i++) {
      const echo = `echo:${i}:${text}`.slice(0, Math.max(size - 40, 12))
      const got = alice.counts.delivered
      const t = performance.now()
      await alice.client.send('bob', echo)
      await alice.until('the echo', () => alice.counts.delivered > got, 10_000)
      rtts.push(performance.now() - t)
    }
    rtts.sort((a, b) => a - b)
    return { perSecond, p50: percentile(rtts, 50), p99: percentile(rtts, 99) }
  } finally {
    await alice.client.stop()
    child.disconnect()
    await new Promise((resolve) => child.once('exit', resolve))
    await server.close()
  }
}

export async function benchReliable(): Promise<Row[]> {
  const rows: Row[] = []
  for (const size of SIZES) {
    const r = await raw(size)
    const p = await pipeline(size)
    rows.push({
      size,
      rawPerSecond: r.perSecond,
      pipelinePerSecond: p.perSecond,
      rawP50: r.p50,
      rawP99: r.p99,
      pipelineP50: p.p50,
      pipelineP99: p.p99,
    })
  }
  return rows
}

export function formatRows(rows: Row[]): string {
  const lines = [
    '| message | raw dgram/s | pipeline msg/s | ratio | raw RTT p50 / p99 (ms) | pipeline echo RTT p50 / p99 (ms) |',
    '| --- | --- | --- | --- | --- | --- |',
  ]
  for (const r of rows) {
    lines.push(
      `| ${r.size} B | ${Math.round(r.rawPerSecond)} | ${Math.round(r.pipelinePerSecond)} | 1/${(r.rawPerSecond / r.pipelinePerSecond).toFixed(1)} | ` +
        `${r.rawP50.toFixed(3)} / ${r.rawP99.toFixed(3)} | ${r.pipelineP50.toFixed(3)} / ${r.pipelineP99.toFixed(3)} |`,
    )
  }
  return lines.join('\n')
}
