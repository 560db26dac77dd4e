// Birthday-paradox punching for a symmetric NAT facing an endpoint-independent one: many sockets on the symmetric
// side, random ports probed from the other, until one probe lands on one of the sockets' mappings.
import { UdpSocket, type Endpoint, type Transport } from '../../core'

/** Ports a NAT picks from when it randomises (Linux `--random-fully` uses 1024-65535 for unprivileged sources). */
export const NAT_PORT_MIN = 1024
export const NAT_PORT_MAX = 65535
/** Auxiliary sockets open at once across all peers: each is a file descriptor and a NAT mapping. */
export const MAX_AUX_SOCKETS = 1024

/** An extra UDP socket the hole-punch plugin opens for probing; a path may keep one as its socket. */
export class AuxSocket extends UdpSocket {
  constructor(onMessage: (bytes: Buffer, from: Endpoint, via: Transport) => void) {
    super('hole-punch-aux', onMessage)
    // An error on one probe socket (e.g. ICMP unreachable) must not take the client down; the socket just stays quiet.
    this.onError(() => undefined)
  }
}

/** Opens up to `count` aux sockets; a socket that fails to bind is skipped (the attempt just has fewer). */
export async function openAuxSockets(
  count: number,
  onMessage: (bytes: Buffer, from: Endpoint, via: Transport) => void,
): Promise<AuxSocket[]> {
  const sockets = Array.from({ length: count }, () => new AuxSocket(onMessage))
  const bound = await Promise.all(
    sockets.map((s) =>
      s.bind().then(
        () => true,
        () => (void s.close(), false),
      ),
    ),
  )
  return sockets.filter((_, i) => bound[i])
}

/** Distinct random ports in the NAT's range, at most `count`. */
export function randomPorts(count: number, random: () => number = Math.random): number[] {
  const span = NAT_PORT_MAX - NAT_PORT_MIN + 1
  const picked = new Set<number>()
  // Bounded: far fewer than `span` ports are ever asked for, so a few retries per port suffice.
  for (let tries = 0; picked.size < Math.min(count, span) && tries < count * 4; tries++)
    picked.add(NAT_PORT_MIN + Math.floor(random() * span))
  return [...picked]
}

/** Chance that `probes` random ports hit one of `sockets` mappings among the NAT's ports: 1 − (1 − s/span)^p. */
export function hitProbability(sockets: number, probes: number): number {
  return 1 - Math.pow(1 - sockets / (NAT_PORT_MAX - NAT_PORT_MIN + 1), probes)
}
