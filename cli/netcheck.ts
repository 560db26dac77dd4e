// `udsu netcheck`: what this network allows udsu, in plain words or one JSON object (as `tailscale netcheck` does).
// It uses only the registration's unauthenticated first step (`hello` → `cookie`, which says where the server sees us)
// and the server's second port (`mapping` → `mapped`): the server stores nothing for it, and both requests are padded
// so that no answer is larger than its request.
import * as dgram from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { randomBytes } from 'node:crypto'
import * as os from 'node:os'
import { parseArgs } from 'node:util'
import {
  decodeFrame,
  decodeJson,
  encodeJson,
  FrameKind,
  formatEndpoint,
  HELLO_PAD,
  MAPPING_PAD,
  parseHostPort,
  parseServerMessage,
  sameEndpoint,
  type ClientMessage,
  type ServerMessage,
} from '../protocol'
import { DEFAULT_CONFIG, loadConfig } from '../core/config'
import type { Endpoint } from '../core/types'

export const NETCHECK_HELP = `Usage: udsu netcheck [--server HOST:PORT[,HOST:PORT…]] [--json] [--config FILE]

Asks each rendezvous server where it sees this machine, and tells whether UDP gets out, the public address, the NAT
type (from the server's two ports), the round trip to each server, whether the router hairpins, and what that means
for direct connections.

  --server HOST:PORT  the servers to ask, comma-separated or repeated (default: the chat's, from the config, or
                      ${DEFAULT_CONFIG.server})
  --json              one JSON object on stdout instead of sentences
  --config FILE       the config file whose server to ask

Exit status: 0 when a server answered, 1 when none did, 2 for a bad command line or config.
`

/** How this machine's NAT maps, as netcheck can tell: `none` no NAT (the public address is our own). */
export type NetcheckNat = 'none' | 'eim' | 'symmetric' | 'unknown'

export interface ServerCheck {
  /** As given: `host:port`. */
  server: string
  /** The address the name resolved to, or undefined when it did not. */
  address?: string
  answered: boolean
  /** The best round trip of the hellos answered, in ms; the samples are all of them. */
  rttMs?: number
  rttSamplesMs: number[]
  /** Where the server's main port sees us. */
  public?: Endpoint
  /** The server's second port, and where it sees us: another port than `public` means a symmetric NAT. */
  altPort?: number
  altPublic?: Endpoint
  /** The host answered that nothing listens on that port (ICMP port unreachable): UDP got out, but no server runs there. */
  refused?: boolean
  /** Why it did not answer: unresolvable, a local firewall, refused, or no answer in time. */
  error?: string
}

export interface NetcheckReport {
  /** UDP got out and something came back: a server's answer, or a host's refusal (nothing listening). */
  udp: boolean
  /** Some server answered: the other findings need one. */
  answered: boolean
  /** Where the internet sees our socket (the first server that answered), absent when none did. */
  public?: Endpoint
  nat: NetcheckNat
  /** A datagram to our own public address came back to us; undefined without NAT (nothing to hairpin) or without UDP. */
  hairpinning?: boolean
  /** Our socket's local addresses (non-internal IPv4, with its port). */
  local: Endpoint[]
  servers: ServerCheck[]
  /** What this means for direct connections, one sentence each. */
  verdict: string[]
}

export interface NetcheckOptions {
  servers: string[]
  /** Hellos per server after the first answer (round-trip samples); the first is always sent. */
  samples?: number
  /** The wait for one answer; a lost request is sent again with twice the wait, three times in all. */
  timeoutMs?: number
}

/** A problem with the command line: exit code 2 and a pointer to the help. */
export class NetcheckUsageError extends Error {}

export async function runNetcheckCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv)
  if (values.help) return (void process.stdout.write(NETCHECK_HELP), 0)
  let servers = (values.server ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
  for (const server of servers) {
    try {
      parseHostPort(server)
    } catch (error) {
      throw new NetcheckUsageError(`--server ${(error as Error).message}`)
    }
  }
  if (servers.length === 0) servers = [(await loadConfig({ config: values.config })).server]
  const report = await netcheck({ servers })
  process.stdout.write(values.json ? JSON.stringify(report) + '\n' : describeReport(report))
  if (!report.answered) {
    const why = report.udp
      ? 'nothing listens there'
      : blockedHere(report)
        ? 'a firewall on this machine refuses to send UDP'
        : 'UDP is blocked on this network, or the server is down'
    process.stderr.write(`udsu netcheck: no udsu server answered (${servers.join(', ')}): ${why}\n`)
    return 1
  }
  return 0
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        server: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        config: { type: 'string' },
      },
    })
  } catch (error) {
    // An unknown option is a usage error (exit 2), as a bad value is.
    throw new NetcheckUsageError((error as Error).message)
  }
}

/** Runs every check; never throws for network trouble (it is what the report describes). */
export async function netcheck(options: NetcheckOptions): Promise<NetcheckReport> {
  const socket = dgram.createSocket('udp4')
  const waiting = new Map<string, (message: ServerMessage) => void>()
  const hairpinNonce = randomBytes(16).toString('hex')
  let hairpinArrived: (() => void) | undefined
  socket.on('message', (bytes) => {
    const frame = decodeFrame(bytes)
    const json = frame && decodeJson(frame.body)
    if (frame?.kind === FrameKind.Probe && json?.t === 'netcheck-hairpin' && json.nonce === hairpinNonce)
      return hairpinArrived?.()
    const message = frame?.kind === FrameKind.Server && json ? parseServerMessage(json) : undefined
    if (message && 'rid' in message && message.rid) waiting.get(message.rid)?.(message)
  })
  // An ICMP error or a send to an unroutable address is an unanswered request, which the report tells.
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve))
  const timeoutMs = options.timeoutMs ?? 400

  /** The last error a send to each endpoint failed with (EPERM: a firewall on this machine). */
  const sendErrors = new Map<string, string>()

  /** One request, sent again on silence (each wait twice the last), up to three times; the answer with its round trip. */
  async function ask(
    message: ClientMessage & { rid: string },
    to: Endpoint,
  ): Promise<{ reply: ServerMessage; rttMs: number } | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      // A fresh rid per attempt: a late answer to the first must not be timed against the second.
      const rid = randomBytes(8).toString('hex')
      const sentAt = process.hrtime.bigint()
      const reply = await new Promise<ServerMessage | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs * 2 ** attempt)
        waiting.set(rid, (m) => {
          clearTimeout(timer)
          resolve(m)
        })
        socket.send(encodeJson(FrameKind.Server, { ...message, rid }), to.port, to.address, (error) => {
          if (error) sendErrors.set(formatEndpoint(to), (error as NodeJS.ErrnoException).code ?? error.message)
        })
      })
      waiting.delete(rid)
      if (reply) return { reply, rttMs: Math.round(Number(process.hrtime.bigint() - sentAt) / 1e4) / 100 }
    }
    return undefined
  }

  async function check(server: string): Promise<ServerCheck> {
    const result: ServerCheck = { server, answered: false, rttSamplesMs: [] }
    const { host, port } = parseHostPort(server)
    try {
      result.address = (await lookup(host, { family: 4 })).address
    } catch (error) {
      return {
        ...result,
        error: `cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      }
    }
    const main = { address: result.address, port }
    // Asked at once, so that silence and a refusal take the same time to tell.
    const refusal = refused(main, timeoutMs * 2)
    const first = await ask({ t: 'hello', rid: '', pad: HELLO_PAD }, main)
    if (first?.reply.t !== 'cookie') {
      if (first) return { ...result, error: `unexpected answer: ${first.reply.t}` }
      const sendError = sendErrors.get(formatEndpoint(main))
      if (sendError)
        return {
          ...result,
          error: `could not send (${sendError}${sendError === 'EPERM' ? ': a firewall on this machine refuses it' : ''})`,
        }
      if (await refusal)
        return { ...result, refused: true, error: 'refused: the host answered that nothing listens on that UDP port' }
      return { ...result, error: 'no answer' }
    }
    result.answered = true
    result.rttSamplesMs.push(first.rttMs)
    result.public = first.reply.public
    result.altPort = first.reply.altPort
    for (let i = 0; i < (options.samples ?? 2); i++) {
      const again = await ask({ t: 'hello', rid: '', pad: HELLO_PAD }, main)
      if (again) result.rttSamplesMs.push(again.rttMs)
    }
    result.rttMs = Math.min(...result.rttSamplesMs)
    if (result.altPort) {
      const mapped = await ask(
        { t: 'mapping', rid: '', pad: MAPPING_PAD },
        { address: result.address, port: result.altPort },
      )
      if (mapped?.reply.t === 'mapped') result.altPublic = mapped.reply.public
    }
    return result
  }

  try {
    const servers = await Promise.all(options.servers.map(check))
    const local = localEndpoints(socket.address().port)
    const answered = servers.some((s) => s.answered)
    const report: NetcheckReport = {
      udp: answered || servers.some((s) => s.refused),
      answered,
      public: servers.find((s) => s.public)?.public,
      nat: classifyNat(servers, local),
      local,
      servers,
      verdict: [],
    }
    if (report.public && report.nat !== 'none') report.hairpinning = await hairpins(report.public)
    report.verdict = verdict(report)
    return report
  } finally {
    socket.close()
  }

  /** Sends a datagram to our own public endpoint from the same socket; it comes back only if the router hairpins. */
  async function hairpins(to: Endpoint): Promise<boolean> {
    const bytes = encodeJson(FrameKind.Probe, { t: 'netcheck-hairpin', nonce: hairpinNonce })
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs * 2)
      hairpinArrived = () => {
        clearTimeout(timer)
        resolve(true)
      }
      socket.send(bytes, to.port, to.address, () => undefined)
    })
  }
}

/**
 * The NAT type from every view of our one socket: seen at our own address, no NAT; two views that differ (two ports of
 * one server, or two servers), a mapping per destination; two that agree, endpoint-independent; one view, unknown.
 */
export function classifyNat(servers: readonly ServerCheck[], local: readonly Endpoint[]): NetcheckNat {
  const seen = servers.flatMap((s) => [s.public, s.altPublic]).filter((e): e is Endpoint => e !== undefined)
  if (seen.length === 0) return 'unknown'
  const first = seen[0]
  if (local.some((e) => sameEndpoint(e, first)) || isLoopback(first.address)) return 'none'
  if (seen.some((e) => !sameEndpoint(e, first))) return 'symmetric'
  return seen.length > 1 ? 'eim' : 'unknown'
}

/**
 * Whether the host says nothing listens at `to` (ICMP port unreachable): only a connected socket is told, so one is made
 * for this. A refusal proves that UDP got out and back; silence proves nothing.
 */
async function refused(to: Endpoint, timeoutMs: number): Promise<boolean> {
  const probe = dgram.createSocket('udp4')
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      probe.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        resolve(error.code === 'ECONNREFUSED')
      })
      probe.on('message', () => {
        clearTimeout(timer)
        resolve(false)
      })
      probe.connect(to.port, to.address, () =>
        probe.send(encodeJson(FrameKind.Server, { t: 'hello', rid: '0', pad: HELLO_PAD }), () => undefined),
      )
    })
  } finally {
    probe.close()
  }
}

function localEndpoints(port: number): Endpoint[] {
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((i) => i && i.family === 'IPv4' && !i.internal)
    .map((i) => i!.address)
  return [...new Set(addresses)].map((address) => ({ address, port }))
}

const isLoopback = (address: string) => address.startsWith('127.')

/** Every send failed with EPERM: the block is on this machine (its firewall), not on the way. */
const blockedHere = (report: NetcheckReport) => report.servers.every((s) => s.error?.includes('EPERM'))

/** What the findings mean for udsu's direct connections, in the order a person needs them. */
function verdict(report: NetcheckReport): string[] {
  if (!report.answered && report.udp) {
    return [
      "UDP gets out (a server's host answered that nothing listens on its port), but no udsu server answered: check the server's address and port, and that it runs.",
    ]
  }
  if (!report.udp) {
    if (blockedHere(report))
      return [
        "A firewall on this machine refuses to send UDP. udsu needs UDP both for direct connections and for the server's relay: allow it out.",
      ]
    return [
      "No server answered over UDP. udsu needs UDP both for direct connections and for the server's relay: on this network it cannot connect unless UDP is allowed out (or the server is up).",
    ]
  }
  const lines: string[] = []
  switch (report.nat) {
    case 'none':
      if (isLoopback(report.public!.address))
        lines.push(
          'The server runs on this machine (loopback): this tells nothing about your network; ask a server on the internet with --server HOST:PORT.',
        )
      else
        lines.push(
          'No NAT: the servers see this machine at its own address. Peers can reach you directly, unless a firewall drops what you did not ask for; then hole punching still opens the way.',
        )
      break
    case 'eim':
      lines.push(
        'Your NAT keeps one public port for every destination (endpoint-independent mapping): hole punching gives direct connections with peers behind most NATs, usually within a second.',
      )
      lines.push(
        'With a peer behind a symmetric NAT, udsu guesses ports (birthday punching): direct within seconds in most attempts, through the relay meanwhile.',
      )
      break
    case 'symmetric':
      lines.push(
        'Your NAT gives each destination another public port (symmetric mapping), so peers cannot know where to reach you.',
      )
      lines.push(
        "With peers on public addresses or behind endpoint-independent NATs udsu guesses ports (birthday punching): direct within seconds in most attempts. With peers behind symmetric NATs a direct connection is not possible: messages go through the server's relay, if it offers one.",
      )
      break
    case 'unknown':
      lines.push(
        "The NAT type could not be told (the server's second port did not answer, and only one server was asked): udsu punches as if the mapping were endpoint-independent and falls back to the relay.",
      )
      break
  }
  if (report.hairpinning === false) {
    lines.push(
      'Your router does not hairpin (a datagram to your own public address did not come back): peers on your own network are reached over their local addresses instead, which udsu tries as well.',
    )
  } else if (report.hairpinning === true) {
    lines.push('Your router hairpins: peers behind the same router can also be reached through the public address.')
  }
  return lines
}

/** The report in sentences, for a person. */
export function describeReport(report: NetcheckReport): string {
  const out: string[] = ['Report:']
  out.push(
    `  * UDP: ${report.answered ? 'yes' : report.udp ? 'yes, but no udsu server answered' : 'no answer from any server'}`,
  )
  if (report.public) out.push(`  * Public address: ${formatEndpoint(report.public)}`)
  if (report.answered) {
    const nat = {
      none: 'none (public address)',
      eim: 'endpoint-independent mapping (easy)',
      symmetric: 'symmetric: a new port per destination (hard)',
      unknown: 'unknown',
    }[report.nat]
    out.push(`  * NAT: ${nat}`)
    out.push(
      `  * Hairpinning: ${report.hairpinning === undefined ? 'not applicable (no NAT)' : report.hairpinning ? 'yes' : 'no'}`,
    )
  }
  out.push('  * Servers:')
  for (const s of report.servers) {
    if (!s.answered) {
      out.push(`    - ${s.server}: ${s.error ?? 'no answer'}`)
      continue
    }
    const views = [`sees you at ${formatEndpoint(s.public!)}`]
    if (s.altPublic) views.push(`its second port ${s.altPort} at ${formatEndpoint(s.altPublic)}`)
    else if (s.altPort) views.push(`its second port ${s.altPort} did not answer`)
    out.push(`    - ${s.server}: ${s.rttMs!.toFixed(1)} ms; ${views.join(', ')}`)
  }
  out.push('', ...report.verdict.map((line) => `${line}`), '')
  return out.join('\n')
}
