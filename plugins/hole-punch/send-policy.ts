// Whom a client may send to before they answered: local candidates only inside its own subnets, and a budget per
// address that has not proven the introduction's token (the probe format itself is protocol/probe.ts). Pure: no sockets, no timers.
import * as os from 'node:os'

/** Local candidates a client punches: at most MAX_LOCAL_CANDIDATES, and only inside one of its own interfaces' subnets. */
export const MAX_LOCAL_CANDIDATES = 4

/** Whether an IPv4 address lies in the subnet of one of this machine's interfaces (not loopback). */
export function inOwnSubnet(address: string, interfaces = os.networkInterfaces()): boolean {
  const ip = ipv4(address)
  if (ip === undefined) return false
  return Object.values(interfaces)
    .flat()
    .some((i) => {
      if (!i || i.family !== 'IPv4' || i.internal) return false
      const [own, mask] = [ipv4(i.address), ipv4(i.netmask)]
      return own !== undefined && mask !== undefined && (own & mask) >>> 0 === (ip & mask) >>> 0
    })
}

function ipv4(address: string): number | undefined {
  const parts = address.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
}

/**
 * How much a client sends to an address that has not answered (proven the token) yet, as QUIC's anti-amplification
 * rule: punches to one such address are capped per window, and the random-port probes of birthday punching to one
 * address per longer window, so neither a peer's candidates nor a server's introductions aim a client at a third party.
 * An address that answered is free of it.
 */
export class SendBudget {
  private readonly spent = new Map<
    string,
    { punches: number; probes: number; punchesSince: number; probesSince: number }
  >()
  private readonly answered = new Map<string, number>()

  constructor(
    private readonly limits = {
      punches: 24,
      punchWindowMs: 10_000,
      probes: 3_000,
      probeWindowMs: 300_000,
      maxAddresses: 4096,
    },
    private readonly now: () => number = Date.now,
  ) {}

  /** The address sent us a probe that verified: it is a peer, not a bystander. */
  answer(address: string): void {
    this.answered.delete(address)
    this.answered.set(address, this.now())
    if (this.answered.size > this.limits.maxAddresses) this.answered.delete(this.answered.keys().next().value as string)
  }

  /** Takes one punch (or birthday probe) to `address` from its budget; false when spent. */
  take(address: string, kind: 'punch' | 'probe'): boolean {
    if (this.answered.has(address)) return true
    const now = this.now()
    let entry = this.spent.get(address)
    if (!entry) {
      if (this.spent.size >= this.limits.maxAddresses) this.spent.delete(this.spent.keys().next().value as string)
      entry = { punches: 0, probes: 0, punchesSince: now, probesSince: now }
      this.spent.set(address, entry)
    }
    if (now - entry.punchesSince >= this.limits.punchWindowMs) Object.assign(entry, { punches: 0, punchesSince: now })
    if (now - entry.probesSince >= this.limits.probeWindowMs) Object.assign(entry, { probes: 0, probesSince: now })
    if (kind === 'punch' ? entry.punches >= this.limits.punches : entry.probes >= this.limits.probes) return false
    if (kind === 'punch') entry.punches++
    else entry.probes++
    return true
  }
}
