// `npm run bench:server`: how many clients one rendezvous server holds, with the real protocol on loopback.
// The server runs alone in a child process; load comes from child processes that each own up to LOAD_PER_PROCESS
// simulated clients, each with its own UDP socket on its own loopback address (16 to a /24: 127.1.0.1, …, 127.1.1.1, …), so the server
// sees each as another host, as behind real NATs, and its per-address limits stay the defaults.
// Every client registers as the hole-punch plugin does (hello → cookie, mapping on the second port, register with an
// ephemeral X25519 key → challenge signed by the server's key, prove with an RSA-PSS signature; then every datagram both
// ways is sealed under the channel that registration derived), then pings every 15 s (the default keepalive); some ask for introductions
// and lists while the rest keep alive. A raw UDP echo in another child process is measured in the same run.
// Bounded in count (UDSU_BENCH_SERVER_CLIENTS, default 100,000) and in time (each phase has a deadline).
// `UDSU_BENCH_QUICK=1`: a few hundred clients and short windows, to check that it runs (used by bench/test).
// `UDSU_BENCH_CPU_PROF=DIR`: a CPU profile of the server process in DIR.
import { fork, type ChildProcess } from 'node:child_process'
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import * as dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { createLogger } from '../core/log'
import type { Endpoint } from '../core/types'
import {
  ChannelEnd,
  decodeFrame,
  decodeJson,
  encodeJson,
  ephemeralKey,
  FrameKind,
  HELLO_PAD,
  MAPPING_PAD,
  PING_PAD,
  parseServerMessage,
  PSS,
  registrationProof,
  type ClientMessage,
  type ServerMessage,
  type Transcript,
} from '../protocol'
import { RendezvousServer } from '../server/index'

const QUICK = process.env.UDSU_BENCH_QUICK === '1'
const CLIENTS = Number(process.env.UDSU_BENCH_SERVER_CLIENTS ?? (QUICK ? 300 : 100_000))
/** The client's default keepalive (hole-punch `keepaliveMs`). */
const KEEPALIVE_MS = 15_000
/** Under the 20,000 file descriptors a process may open here. */
const LOAD_PER_PROCESS = 17_000
/** Registrations each load process keeps in flight: enough to hide the round trips, few enough not to overflow the
 *  server's socket buffer (a `register` is ~700 bytes). */
const IN_FLIGHT = 16
/** RSA keys the clients share: a 2048-bit signature costs ~1 ms, a key ~100 ms; names need not have keys of their own. */
const KEY_POOL = QUICK ? 2 : 8
const REGISTER_DEADLINE_MS = QUICK ? 30_000 : 100_000
/** One whole keepalive interval, so that every client pinged once in it. */
const KEEPALIVE_WINDOW_MS = QUICK ? 2_000 : KEEPALIVE_MS
const INTRODUCTIONS = QUICK ? 50 : 2_000
const INTRODUCTIONS_PER_SECOND = QUICK ? 100 : 200
const LISTS = QUICK ? 10 : 50
const ECHOES = QUICK ? 2_000 : 50_000
const REQUEST_TIMEOUT_MS = 1_000

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : NaN
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The i-th client's own loopback address, 16 to a /24 (127.1.0.1–16, 127.1.1.1–16, …): the server's quotas per address
 * and per /24 (16 and 64) stay the defaults, as for users behind many NATs.
 */
function clientAddress(i: number): string {
  return `127.${1 + Math.floor(i / 4096)}.${Math.floor(i / 16) % 256}.${(i % 16) + 1}`
}

interface Usage {
  cpuMs: number
  rss: number
  heapUsed: number
  online?: number
  stats?: Record<string, number>
}

// ---- the child processes ----

/** The server, alone in its process; tells its ports, then answers `usage` (after a GC when asked) over IPC. */
async function serve(): Promise<void> {
  const server = new RendezvousServer({
    host: '127.0.0.1',
    port: 0,
    maxRegistrations: CLIENTS + 1000,
    logger: createLogger('silent'),
  })
  const main = await server.listen()
  process.on('message', (m: { t: string; gc?: boolean }) => {
    if (m.t !== 'usage') return
    if (m.gc) (globalThis as { gc?: () => void }).gc?.()
    process.send!({ t: 'usage', usage: usage({ online: server.online, stats: { ...server.stats } }) })
  })
  process.on('disconnect', () => void server.close().then(() => process.exit(0)))
  process.send!({ t: 'ready', port: main.port, altPort: server.altAddress()?.port })
}

/** The raw baseline: a socket that echoes every datagram, nothing else. */
function echo(): void {
  const socket = dgram.createSocket('udp4')
  socket.on('message', (bytes, rinfo) => socket.send(bytes, rinfo.port, rinfo.address))
  process.on('message', (m: { t: string; gc?: boolean }) => {
    if (m.t !== 'usage') return
    if (m.gc) (globalThis as { gc?: () => void }).gc?.()
    process.send!({ t: 'usage', usage: usage() })
  })
  process.on('disconnect', () => process.exit(0))
  socket.bind(0, '127.0.0.1', () => process.send!({ t: 'ready', port: socket.address().port }))
}

function usage(extra: Partial<Usage> = {}): Usage {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  return { cpuMs: (cpu.user + cpu.system) / 1000, rss: memory.rss, heapUsed: memory.heapUsed, ...extra }
}

interface SimClient {
  name: string
  socket: dgram.Socket
  key: number
  registered: boolean
  /** The channel its registration derived: what it sends after `prove` is sealed under it, and what it gets opened. */
  channel?: ChannelEnd
}

/** The requests that go in clear (before there are keys, and NAT detection): the rest is sealed once a channel exists. */
const CLEAR = new Set(['hello', 'register', 'mapping'])

/** A load process: its share of the clients, registering, keeping alive, and asking for introductions and lists. */
async function load(): Promise<void> {
  const pending = new Map<string, (message: ServerMessage) => void>()
  const clients: SimClient[] = []
  let keys: { publicPem: string; privateKey: KeyObject }[] = []
  let server: Endpoint = { address: '127.0.0.1', port: 0 }
  let serverAlt: Endpoint | undefined
  let pings = 0
  let pongs = 0
  let retries = 0
  let keepalive: NodeJS.Timeout | undefined

  const onMessage = (client: SimClient, bytes: Buffer) => {
    const outer = decodeFrame(bytes)
    const frame = outer?.kind === FrameKind.Channel ? client.channel?.open(outer.body) : outer
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const message = json && parseServerMessage(json)
    if (message?.t === 'pong') pongs++
    if (message && 'rid' in message && message.rid) pending.get(message.rid)?.(message)
  }

  /** One request from one client's socket, resent on silence; the reply, or undefined after three attempts. */
  async function request(
    client: SimClient,
    message: ClientMessage & { rid: string },
    to = server,
  ): Promise<ServerMessage | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt > 0) retries++
      const reply = await new Promise<ServerMessage | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), REQUEST_TIMEOUT_MS)
        pending.set(message.rid, (m) => {
          clearTimeout(timer)
          resolve(m)
        })
        client.socket.send(frameFor(client, message), to.port, to.address)
      })
      pending.delete(message.rid)
      if (reply) return reply
    }
    return undefined
  }
  const rid = () => randomBytes(8).toString('hex')
  const frameFor = (client: SimClient, message: ClientMessage) => {
    const frame = encodeJson(FrameKind.Server, message)
    return client.channel && !CLEAR.has(message.t) ? client.channel.seal(frame) : frame
  }

  /** As hole-punch's `admit`: hello, the second port's mapping, register, prove. */
  async function register(client: SimClient): Promise<boolean> {
    const cookie = await request(client, { t: 'hello', rid: rid(), pad: HELLO_PAD })
    if (cookie?.t !== 'cookie') return false
    if (serverAlt) await request(client, { t: 'mapping', rid: rid(), pad: MAPPING_PAD }, serverAlt)
    const local = [{ address: client.socket.address().address, port: client.socket.address().port }]
    const key = keys[client.key]
    const eph = ephemeralKey()
    const challenge = await request(client, {
      t: 'register',
      rid: rid(),
      cookie: cookie.cookie,
      name: client.name,
      key: key.publicPem,
      eph: eph.public,
    })
    if (challenge?.t !== 'challenge') return false
    // The server's signature over the transcript is not checked here (the client's cost, not the server's).
    const transcript: Transcript = {
      nonce: challenge.nonce,
      name: client.name,
      clientKey: key.publicPem,
      clientEph: eph.public,
      serverEph: challenge.eph,
      serverKey: challenge.skey,
    }
    // `prove` goes and `registered` comes sealed: the channel must exist before either.
    client.channel = ChannelEnd.derive('client', eph, challenge.eph, transcript)
    const sig = sign('sha256', registrationProof(transcript), { key: key.privateKey, ...PSS }).toString('base64')
    const proven = await request(client, { t: 'prove', rid: rid(), sig, local, nat: 'eim' })
    return proven?.t === 'registered'
  }

  /** Each registered client pings once per KEEPALIVE_MS, spread evenly: a cursor walks the list every 50 ms. */
  function startKeepalive(): void {
    let cursor = 0
    let last = performance.now()
    keepalive = setInterval(() => {
      const now = performance.now()
      const due = Math.ceil((clients.length * (now - last)) / KEEPALIVE_MS)
      last = now
      for (let n = 0; n < due && clients.length > 0; n++) {
        const client = clients[cursor++ % clients.length]
        if (!client.registered) continue
        pings++
        // Not awaited: a keepalive's answer is not waited for by the client either, only counted when missing.
        client.socket.send(frameFor(client, { t: 'ping', rid: rid(), pad: PING_PAD }), server.port, server.address)
      }
    }, 50)
  }

  process.on('message', (m: Record<string, unknown>) => {
    void (async () => {
      if (m.t === 'start') {
        server = { address: '127.0.0.1', port: m.port as number }
        serverAlt = m.altPort ? { address: '127.0.0.1', port: m.altPort as number } : undefined
        keys = (m.keys as string[]).map((pem) => {
          const privateKey = createPrivateKey(pem)
          return {
            privateKey,
            publicPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
          }
        })
        const first = m.first as number
        for (let i = 0; i < (m.count as number); i++) {
          const socket = dgram.createSocket('udp4')
          const index = first + i
          const client: SimClient = { name: `c${index}`, socket, key: index % keys.length, registered: false }
          socket.on('message', (bytes: Buffer) => onMessage(client, bytes))
          await new Promise<void>((resolve) => socket.bind(0, clientAddress(index), resolve))
          clients.push(client)
        }
        startKeepalive()
        const deadline = Date.now() + (m.deadlineMs as number)
        let next = 0
        let registered = 0
        let failed = 0
        const worker = async () => {
          while (next < clients.length && Date.now() < deadline) {
            const client = clients[next++]
            if (await register(client)) {
              client.registered = true
              registered++
            } else failed++
            if ((registered + failed) % 500 === 0) process.send!({ t: 'progress', registered, failed })
          }
        }
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
        process.send!({ t: 'registered', registered, failed, retries })
      } else if (m.t === 'pings') {
        process.send!({ t: 'pings', pings, pongs })
      } else if (m.t === 'introductions' || m.t === 'lists') {
        // Timed one request at a time per stream, `perSecond` in all, between random registered clients.
        // Between this process's own registered clients: the server does the same work for any two names.
        const registered = clients.filter((c) => c.registered)
        const targets = registered.map((c) => c.name).reverse()
        const samples: number[] = []
        let failures = 0
        const started = performance.now()
        const count = m.count as number
        const perSecond = m.perSecond as number
        await Promise.all(
          Array.from({ length: count }, async (_, i) => {
            await sleep(Math.max(0, started + (i * 1000) / perSecond - performance.now()))
            const client = registered[i % registered.length]
            const to = targets[i % targets.length]
            const t = performance.now()
            const message: ClientMessage & { rid: string } =
              m.t === 'lists'
                ? { t: 'list', rid: rid() }
                : { t: 'connect', rid: rid(), to: to === client.name ? targets[(i + 1) % targets.length] : to }
            const reply = await request(client, message)
            const expected = m.t === 'lists' ? 'peers' : 'intro'
            if (reply?.t === expected) samples.push(performance.now() - t)
            else failures++
          }),
        )
        process.send!({ t: 'samples', samples, failures })
      } else if (m.t === 'stop') {
        clearInterval(keepalive)
        for (const client of clients) client.socket.close()
        process.exit(0)
      }
    })()
  })
  process.send!({ t: 'ready' })
}

// ---- the benchmark ----

interface Child {
  process: ChildProcess
  /** The child's `ready` message. */
  ready: Record<string, unknown>
  next(t: string): Promise<Record<string, unknown>>
  send(message: Record<string, unknown>): void
}

/** Forks this file in `mode`; `next(t)` resolves with the next IPC message of type `t`. */
function child(mode: string, execArgv: string[] = []): Promise<Child> {
  const proc = fork(__filename, [mode], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc', ...execArgv],
  })
  const waiting = new Map<string, Array<(m: Record<string, unknown>) => void>>()
  const inbox = new Map<string, Array<Record<string, unknown>>>()
  proc.on('message', (m: Record<string, unknown>) => {
    const t = m.t as string
    const waiter = waiting.get(t)?.shift()
    if (waiter) waiter(m)
    else inbox.set(t, [...(inbox.get(t) ?? []), m])
  })
  const handle: Omit<Child, 'ready'> = {
    process: proc,
    next: (t) =>
      new Promise((resolve, reject) => {
        const queued = inbox.get(t)?.shift()
        if (queued) return resolve(queued)
        waiting.set(t, [...(waiting.get(t) ?? []), resolve])
        proc.once('exit', (code) =>
          reject(new Error(`bench/server ${mode} exited with ${code} while waiting for ${t}`)),
        )
      }),
    send: (message) => proc.send(message),
  }
  return handle.next('ready').then((ready) => ({ ...handle, ready }))
}

async function usageOf(process: Child, gc = false): Promise<Usage> {
  process.send({ t: 'usage', gc })
  return (await process.next('usage')).usage as Usage
}

/** Raw echoes: a ping-pong for latency (`rounds`, one at a time) and a flood (64 in flight) for CPU per datagram. */
async function rawEcho(
  echoProcess: Child,
  port: number,
  rounds: number,
  flood: number,
  deadlineMs = 60_000,
): Promise<{ p50: number; p99: number; lost: number; cpuUsPerDatagram: number; perSecond: number }> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const ping = encodeJson(FrameKind.Server, { t: 'ping', rid: '0', pad: PING_PAD })
  const rtts: number[] = []
  let lost = 0
  const deadline = performance.now() + deadlineMs
  for (let i = 0; i < rounds && performance.now() < deadline; i++) {
    const t = performance.now()
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), REQUEST_TIMEOUT_MS)
      socket.once('message', () => (clearTimeout(timer), resolve(true)))
      socket.send(ping, port, '127.0.0.1')
    })
    if (answered) rtts.push(performance.now() - t)
    else lost++
  }
  rtts.sort((a, b) => a - b)
  const latency = { p50: percentile(rtts, 50), p99: percentile(rtts, 99), lost }
  if (flood === 0) return (socket.close(), { ...latency, cpuUsPerDatagram: NaN, perSecond: NaN })
  const before = await usageOf(echoProcess)
  const started = performance.now()
  let received = 0
  await new Promise<void>((resolve) => {
    let sent = 0
    const timer = setTimeout(resolve, 30_000)
    const pump = () => {
      while (sent - received < 64 && sent < flood) {
        sent++
        socket.send(ping, port, '127.0.0.1')
      }
    }
    socket.removeAllListeners('message')
    socket.on('message', () => {
      if (++received >= flood) return (clearTimeout(timer), resolve())
      pump()
    })
    pump()
  })
  const seconds = (performance.now() - started) / 1000
  const after = await usageOf(echoProcess)
  socket.close()
  return {
    ...latency,
    cpuUsPerDatagram: ((after.cpuMs - before.cpuMs) * 1000) / received,
    perSecond: received / seconds,
  }
}

/** Datagrams the kernel dropped at these loopback ports' sockets (receive buffer full), from /proc/net/udp. */
function socketDrops(ports: number[]): number {
  const wanted = new Set(ports.map((port) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`))
  let drops = 0
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (wanted.has(fields[1])) drops += Number(fields[fields.length - 1])
  }
  return drops
}

const MB = 1024 * 1024
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'

async function bench(): Promise<void> {
  const began = performance.now()
  const profile = process.env.UDSU_BENCH_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.UDSU_BENCH_CPU_PROF]
    : []
  const serverProcess = await child('serve', profile)
  const echoProcess = await child('echo')
  const loads = await Promise.all(Array.from({ length: Math.ceil(CLIENTS / LOAD_PER_PROCESS) }, () => child('load')))
  const lines: string[] = []
  const say = (line: string) => (lines.push(line), console.log(line))
  try {
    say(
      `rendezvous server on loopback: ${fmt(CLIENTS)} simulated clients in ${loads.length} load processes${QUICK ? ' (quick mode: figures not meaningful)' : ''}`,
    )
    const keyStarted = performance.now()
    const keys = Array.from({ length: KEY_POOL }, () =>
      generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString(),
    )
    say(
      `  ${KEY_POOL} RSA-2048 keys generated in ${fmt(performance.now() - keyStarted)} ms, shared by the clients (one per name would take ${fmt((((performance.now() - keyStarted) / KEY_POOL) * CLIENTS) / 1000)} s)`,
    )

    // The raw baseline, before the load: latency one at a time, and the CPU one echo costs.
    const raw = await rawEcho(echoProcess, echoProcess.ready.port as number, QUICK ? 200 : 1000, ECHOES)
    say(
      `  raw UDP echo (same run, idle): p50 ${fmt(raw.p50, 3)} ms, p99 ${fmt(raw.p99, 3)} ms; ${fmt(raw.cpuUsPerDatagram, 1)} µs CPU per echo = ${fmt(1e6 / raw.cpuUsPerDatagram)} echoes/s per core (${fmt(raw.perSecond)}/s with 64 in flight)`,
    )

    const keepalives = async () => {
      const counts = await Promise.all(loads.map(async (l) => (l.send({ t: 'pings' }), await l.next('pings'))))
      return {
        pings: counts.reduce((n, c) => n + (c.pings as number), 0),
        pongs: counts.reduce((n, c) => n + (c.pongs as number), 0),
      }
    }

    // Registrations: every client through the full admission, as fast as the load processes sign.
    const idle = await usageOf(serverProcess, true)
    const registerStarted = performance.now()
    loads.forEach((load, i) =>
      load.send({
        t: 'start',
        port: serverProcess.ready.port,
        altPort: serverProcess.ready.altPort,
        keys,
        first: i * LOAD_PER_PROCESS,
        count: Math.min(LOAD_PER_PROCESS, CLIENTS - i * LOAD_PER_PROCESS),
        deadlineMs: REGISTER_DEADLINE_MS,
      }),
    )
    const results = await Promise.all(loads.map((load) => load.next('registered')))
    const registerSeconds = (performance.now() - registerStarted) / 1000
    const registered = results.reduce((n, r) => n + (r.registered as number), 0)
    const failed = results.reduce((n, r) => n + (r.failed as number), 0)
    const retries = results.reduce((n, r) => n + (r.retries as number), 0)
    const afterRegistering = await usageOf(serverProcess)
    const pingsWhileRegistering = (await keepalives()).pings
    const registerCpuSeconds = (afterRegistering.cpuMs - idle.cpuMs) / 1000
    say(
      `  registered ${fmt(registered)} of ${fmt(CLIENTS)} in ${fmt(registerSeconds, 1)} s (${fmt(failed)} failed, ${fmt(retries)} requests resent; server online: ${fmt(afterRegistering.online ?? 0)})`,
    )
    const registrationLine = (cpuUsPerPing: number) => {
      const cpuSeconds = registerCpuSeconds - (pingsWhileRegistering * cpuUsPerPing) / 1e6
      const perCore = registered / cpuSeconds
      return `  registrations: ${fmt(registered / registerSeconds)}/s wall (bound by the load processes' signatures, ~1 ms each); server CPU ${fmt((cpuSeconds * 1e6) / registered)} µs per registration (the ${fmt(pingsWhileRegistering)} keepalives meanwhile taken out) = ${fmt(perCore)} registrations/s per core; raw echo ${fmt(1e6 / raw.cpuUsPerDatagram)}/s per core (ratio 1/${fmt(1e6 / raw.cpuUsPerDatagram / perCore, 1)}; a registration is 4 requests and 4 answers)`
    }

    const held = await usageOf(serverProcess, true)
    say(
      `  memory: ${fmt(held.rss / MB, 1)} MB RSS with ${fmt(registered)} registered (idle ${fmt(idle.rss / MB, 1)} MB; heap ${fmt(idle.heapUsed / MB, 1)} → ${fmt(held.heapUsed / MB, 1)} MB) = ${fmt((held.rss - idle.rss) / registered)} B RSS, ${fmt((held.heapUsed - idle.heapUsed) / registered)} B heap per client`,
    )

    // Keepalives alone for one whole interval: every client pings once.
    const before = await keepalives()
    const windowStart = await usageOf(serverProcess)
    const windowStarted = performance.now()
    await sleep(KEEPALIVE_WINDOW_MS)
    const windowEnd = await usageOf(serverProcess)
    const windowSeconds = (performance.now() - windowStarted) / 1000
    const after = await keepalives()
    const pingRate = (after.pings - before.pings) / windowSeconds
    const keepaliveCpu = (windowEnd.cpuMs - windowStart.cpuMs) / 1000 / windowSeconds
    const rawAtRate = (pingRate * raw.cpuUsPerDatagram) / 1e6
    say(
      `  keepalive: ${fmt(registered)} clients every ${KEEPALIVE_MS / 1000} s = ${fmt(pingRate)} pings/s; server CPU ${fmt(keepaliveCpu * 100, 1)} % of a core (raw echo at that rate: ${fmt(rawAtRate * 100, 1)} %, ratio 1/${fmt(keepaliveCpu / rawAtRate, 1)}); ${fmt((100 * (after.pongs - before.pongs)) / (after.pings - before.pings), 1)} % answered in the window; online ${fmt(windowEnd.online ?? 0)}`,
    )
    say(registrationLine((keepaliveCpu * windowSeconds * 1e6) / Math.max(1, after.pings - before.pings)))
    if (registered < CLIENTS) {
      // Linear in the clients: each holds one registration, and pings at the same interval.
      const scale = CLIENTS / registered
      say(
        `  at ${fmt(CLIENTS)} (linear from ${fmt(registered)}, not measured): ${fmt((idle.rss + (held.rss - idle.rss) * scale) / MB)} MB RSS, keepalive ${fmt(keepaliveCpu * scale * 100, 1)} % of a core`,
      )
    }

    // Introductions under that load, spread over the load processes, with raw echoes timed alongside.
    const introRequests = loads.map((load) => {
      load.send({
        t: 'introductions',
        count: Math.ceil(INTRODUCTIONS / loads.length),
        perSecond: INTRODUCTIONS_PER_SECOND / loads.length,
      })
      return load.next('samples')
    })
    // Pings one at a time for as long as the introductions run (a lost one waits its 1 s timeout: counted apart).
    const rawUnderLoad = rawEcho(
      echoProcess,
      echoProcess.ready.port as number,
      Number.MAX_SAFE_INTEGER,
      0,
      (INTRODUCTIONS / INTRODUCTIONS_PER_SECOND) * 1000,
    )
    const intros = await Promise.all(introRequests)
    const echoUnderLoad = await rawUnderLoad
    const introSamples = intros.flatMap((r) => r.samples as number[]).sort((a, b) => a - b)
    const introFailures = intros.reduce((n, r) => n + (r.failures as number), 0)
    say(
      `  introduction (connect → intro) under that load, ${INTRODUCTIONS_PER_SECOND}/s: p50 ${fmt(percentile(introSamples, 50), 3)} ms, p99 ${fmt(percentile(introSamples, 99), 3)} ms (${introSamples.length} timed, ${introFailures} unanswered); raw echo alongside: p50 ${fmt(echoUnderLoad.p50, 3)} ms, p99 ${fmt(echoUnderLoad.p99, 3)} ms, ${echoUnderLoad.lost} lost (ratio ${fmt(percentile(introSamples, 50) / echoUnderLoad.p50, 1)} / ${fmt(percentile(introSamples, 99) / echoUnderLoad.p99, 1)})`,
    )

    const listRequest = loads[0]
    listRequest.send({ t: 'lists', count: LISTS, perSecond: 10 })
    const lists = await listRequest.next('samples')
    const listSamples = (lists.samples as number[]).sort((a, b) => a - b)
    say(
      `  list (40 names of ${fmt(registered)}): p50 ${fmt(percentile(listSamples, 50), 3)} ms, p99 ${fmt(percentile(listSamples, 99), 3)} ms (${listSamples.length} timed, ${lists.failures as number} unanswered)`,
    )
    const final = await usageOf(serverProcess)
    say(
      `  server stats: ${JSON.stringify(final.stats)}; datagrams the kernel dropped at the server's full socket buffers: ${fmt(socketDrops([serverProcess.ready.port as number, serverProcess.ready.altPort as number]))}`,
    )
    say(`  done in ${fmt((performance.now() - began) / 1000, 1)} s`)
  } finally {
    for (const load of loads) load.send({ t: 'stop' })
    serverProcess.process.disconnect()
    echoProcess.process.disconnect()
    const running = [serverProcess, echoProcess, ...loads].filter((c) => c.process.exitCode === null)
    await Promise.all(running.map((c) => new Promise((resolve) => c.process.once('exit', resolve))))
  }
}

const mode = process.argv[2]
const run =
  mode === 'serve'
    ? serve()
    : mode === 'echo'
      ? Promise.resolve(echo())
      : mode === 'load'
        ? load()
        : bench().then(() => process.exit(0))
run.catch((error: Error) => {
  console.error(error)
  process.exit(1)
})
