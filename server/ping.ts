// `udsu ping HOST:PORT`: a health check for scripts and monitors. Exit 0 when a udsu server answers there, 1 when none
// does in time, 2 for a bad command line.
import * as dgram from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { randomBytes } from 'node:crypto'
import { millisecondsFlag, parseCommandLine } from '../core/args'
import { UsageError } from '../core/errors'
import { decodeFrame, decodeJson, encodeJson, FrameKind, parseHostPort } from '../core/wire'
import { HEALTH_PAD, parseHealthReply } from '../protocol'

export const PING_HELP = `udsu ping — check that a rendezvous server answers

Usage: udsu ping HOST:PORT [--timeout MS]

Sends a health check (three tries, no registration needed) to the server's UDP port and prints the round trip.
  --timeout MS   how long to wait in all (default 3000)
  -h, --help

Exit status: 0 when the server answered, 1 when it did not in time (or HOST does not resolve), 2 for a bad command line.
`

const HELP_POINTER = 'udsu ping --help'

export async function runPingCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    'ping',
    { help: { type: 'boolean', short: 'h' }, timeout: { type: 'string' } },
    argv,
    1,
  )
  if (values.help) return (void process.stdout.write(PING_HELP), 0)
  if (!positionals[0]) throw new UsageError('udsu ping needs the server, e.g. udsu ping 127.0.0.1:7777', HELP_POINTER)
  let target: { host: string; port: number }
  try {
    target = parseHostPort(positionals[0])
  } catch (error) {
    throw new UsageError(`udsu ping: ${(error as Error).message}`, HELP_POINTER)
  }
  const timeoutMs = values.timeout === undefined ? 3000 : millisecondsFlag('timeout', values.timeout, HELP_POINTER)
  const address = await lookup(target.host).catch((error: Error) => {
    throw new Error(`cannot resolve ${target.host}: ${error.message}`)
  })
  const roundTrip = await healthCheck(
    { address: address.address, port: target.port },
    address.family === 6 ? 'udp6' : 'udp4',
    timeoutMs,
  )
  if (roundTrip === undefined) {
    throw new Error(
      `no answer from ${positionals[0]} within ${timeoutMs} ms: is a udsu server running there, and does the firewall let UDP through to that port?`,
    )
  }
  process.stdout.write(
    `udsu server at ${positionals[0]} answered in ${roundTrip.ms.toFixed(1)} ms${roundTrip.redis ? `; Redis ${roundTrip.redis}` : ''}\n`,
  )
  if (roundTrip.redis === 'down') {
    // Still serving (its own clients meet each other), so not a failure of the check; but the operator must hear it.
    process.stderr.write(
      'udsu ping: that instance cannot reach its Redis: clients of other instances cannot reach its clients (see its log)\n',
    )
  }
  return 0
}

/**
 * Sends the health check three times across `timeoutMs` (a datagram may be lost); the round trip from the latest send
 * in ms, with the instance's Redis state when it has one, or undefined.
 */
export async function healthCheck(
  to: { address: string; port: number },
  family: 'udp4' | 'udp6',
  timeoutMs: number,
): Promise<{ ms: number; redis?: 'up' | 'down' } | undefined> {
  const socket = dgram.createSocket(family)
  const rid = randomBytes(8).toString('hex')
  const request = encodeJson(FrameKind.Server, { t: 'health', rid, pad: HEALTH_PAD })
  let sentAt = performance.now()
  const timers: NodeJS.Timeout[] = []
  try {
    return await new Promise<{ ms: number; redis?: 'up' | 'down' } | undefined>((resolve) => {
      socket.on('message', (bytes) => {
        const frame = decodeFrame(bytes)
        const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
        const reply = json && parseHealthReply(json)
        if (reply && reply.rid === rid)
          resolve({ ms: performance.now() - sentAt, ...(reply.redis ? { redis: reply.redis } : {}) })
      })
      // An ICMP "port unreachable" arrives as an error on a connected socket only; ours is not, so the timeout decides.
      socket.on('error', () => resolve(undefined))
      for (let attempt = 0; attempt < 3; attempt++) {
        timers.push(
          setTimeout(
            () => {
              sentAt = performance.now()
              socket.send(request, to.port, to.address, () => undefined)
            },
            (timeoutMs / 3) * attempt,
          ),
        )
      }
      timers.push(setTimeout(() => resolve(undefined), timeoutMs))
    })
  } finally {
    for (const timer of timers) clearTimeout(timer)
    socket.close()
  }
}
