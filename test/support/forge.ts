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
    execFileSync('python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)'], { stdio: 'ignore' })
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
  const args = ['-c', SCRIPT, from.address, String(from.port), to.address, String(to.port), ...payloads.map((p) => p.toString('hex'))]
  return new Promise((resolve, reject) => execFile('python3', args, (error) => (error ? reject(new Error(`forging failed: ${error.message}`)) : resolve())))
}
