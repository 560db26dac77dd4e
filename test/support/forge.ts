// UDP datagrams with a forged source address and port, sent from a raw socket (IP_HDRINCL), as an attacker who can
// inject packets would: nothing the receiver checks can tell them from the real sender's. Needs root and python3 (Node
// has no raw sockets); on loopback the kernel delivers them as if they came from that endpoint.
import { execFile, execFileSync } from 'node:child_process'
import type { Endpoint } from '../../core/types'

const SCRIPT = `
import socket, struct, sys
src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for payload in (bytes.fromhex(h) for h in sys.argv[5:]):
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
`

/** Why forged datagrams cannot be sent here, or undefined when they can. */
export function forgeUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'forging source addresses needs root (a raw socket)'
  try {
    execFileSync(
      'python3',
      ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)'],
      { stdio: 'ignore' },
    )
  } catch {
    return 'forging source addresses needs python3 and a raw socket'
  }
  return undefined
}

/** mocha `before`: skips the suite with the reason where forging is impossible, and fails in CI, where it must run. */
export function requireForge(this: Mocha.Context): void {
  const why = forgeUnavailable()
  if (!why) return
  if (process.env.CI) throw new Error(why)
  this.skip()
}

/** Sends each payload as one UDP datagram from `from` (forged) to `to`, in order; resolves once they are sent. */
export function sendForged(from: Endpoint, to: Endpoint, ...payloads: Buffer[]): Promise<void> {
  const args = [
    '-c',
    SCRIPT,
    from.address,
    String(from.port),
    to.address,
    String(to.port),
    ...payloads.map((p) => p.toString('hex')),
  ]
  return new Promise((resolve, reject) =>
    execFile('python3', args, (error) => (error ? reject(new Error(`forging failed: ${error.message}`)) : resolve())),
  )
}

const FLOOD_SCRIPT = `
import os, random, signal, socket, struct, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print(sent), sys.exit(0)))
sent = 0
dst, dport, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
template, fresh_from = bytes.fromhex(sys.argv[5]), int(sys.argv[6])
sources = [(a, int(p)) for a, p in (s.rsplit(':', 1) for s in sys.argv[7:])]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
start = time.monotonic()
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    while sent < int(elapsed * rate) + 1:
        payload = template if fresh_from < 0 else template[:fresh_from] + os.urandom(len(template) - fresh_from)
        if sources and sent % 2 == 0:
            src, sport = sources[(sent // 2) % len(sources)]
        else:
            src, sport = '127.%d.%d.%d' % (random.randrange(256), random.randrange(256), random.randrange(1, 255)), random.randrange(1024, 65536)
        udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + udp, (dst, 0))
        sent += 1
    time.sleep(0.002)
print(sent)
`

export interface ForgedFlood {
  /** Datagrams a second, and for how long. */
  perSecond: number
  seconds: number
  /** The datagram; from byte `freshFrom` on, each copy gets new random bytes (a fresh nonce, say); -1 keeps it whole. */
  payload: Buffer
  freshFrom: number
  /** Every other datagram comes from one of these (in turn), the rest from random 127.x.y.z addresses and ports. */
  from?: Endpoint[]
}

/**
 * Floods `to` with forged datagrams from a raw socket at a steady rate. `sent` resolves with how many were sent, once
 * the time is up or `stop()` ended it early; `over` says whether it has ended.
 */
export function floodForged(
  to: Endpoint,
  flood: ForgedFlood,
): { sent: Promise<number>; stop(): void; readonly over: boolean } {
  const sources = (flood.from ?? []).map((endpoint) => `${endpoint.address}:${endpoint.port}`)
  const args = [
    '-c',
    FLOOD_SCRIPT,
    to.address,
    String(to.port),
    String(flood.perSecond),
    String(flood.seconds),
    flood.payload.toString('hex'),
    String(flood.freshFrom),
    ...sources,
  ]
  let over = false
  let child: ReturnType<typeof execFile> | undefined
  const sent = new Promise<number>((resolve, reject) => {
    child = execFile('python3', args, (error, stdout) => {
      over = true
      if (error) reject(new Error(`the forged flood failed: ${error.message}`))
      else resolve(Number(stdout.trim()))
    })
  })
  return {
    sent,
    stop: () => void (over || child?.kill('SIGTERM')),
    get over() {
      return over
    },
  }
}
