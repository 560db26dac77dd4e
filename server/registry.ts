// Who is online: names bound to keys and endpoints, with expiry. Pure state, no sockets, so it is easy to test.
import type { Endpoint } from '../core/types'
import { foldName, formatEndpoint, type ChannelEnd, type NatType } from '../protocol'

export interface Registration {
  name: string
  /** PEM of the RSA identity public key. */
  key: string
  /** The endpoint the server sees (server-reflexive). */
  endpoint: Endpoint
  /** The endpoints the client reports on its own interfaces. */
  local: Endpoint[]
  /** The NAT type the client detected and reported; set by the server after `register`. */
  nat?: NatType
  /** The client process that registered (see PeerIntro.instance). */
  instance?: string
  /** The authenticated channel the registration set up; every datagram to and from it goes through it. */
  channel?: ChannelEnd
  expiresAt: number
}

export type RegisterResult =
  | { ok: true; registration: Registration; evicted?: Registration }
  | { ok: false; code: 'name_taken' | 'over_quota'; message: string }

/** Registrations one source may hold at once: per address, and per network prefix (/24 for IPv4, /48 for IPv6). */
export interface Quotas {
  perAddress: number
  perPrefix: number
}

export const DEFAULT_QUOTAS: Quotas = { perAddress: 16, perPrefix: 64 }

/** The network an address belongs to for quotas: its /24 (IPv4) or /48 (IPv6). */
export function addressPrefix(address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/i.exec(address)
  if (v4) return `${v4[1]}.0/24`
  const [head, tail = ''] = address.toLowerCase().split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left
  return `${groups
    .slice(0, 3)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/48`
}

/** Names per `peers` page. */
export interface ListPage {
  names: string[]
  more: boolean
}

export class Registry {
  private readonly byName = new Map<string, Registration>()
  private readonly byEndpoint = new Map<string, Registration>()
  /** Live counts per source address and per prefix, for the quotas. */
  private readonly perAddress = new Map<string, number>()
  private readonly perPrefix = new Map<string, number>()
  /** Names sorted for `list`, folded for search; rebuilt only after a change. */
  private sorted?: Array<{ name: string; folded: string }>

  constructor(
    private readonly ttlMs: number,
    private readonly maxRegistrations: number,
    private readonly quotas: Quotas = DEFAULT_QUOTAS,
  ) {}

  get size(): number {
    return this.byName.size
  }

  /** Registers or refreshes a name; a name online under another key is refused. */
  register(name: string, key: string, endpoint: Endpoint, local: Endpoint[], now: number): RegisterResult {
    const existing = this.byName.get(name)
    if (existing && existing.key !== key && existing.expiresAt > now) {
      return { ok: false, code: 'name_taken', message: `the name "${name}" is online under another key` }
    }
    // One registration per endpoint: a client that re-registers under a new name drops the old one.
    const atEndpoint = this.byEndpoint.get(formatEndpoint(endpoint))
    const replaced = [existing, atEndpoint && atEndpoint.name !== name ? atEndpoint : undefined].filter(
      (r): r is Registration => r !== undefined,
    )
    // Quotas per address and per prefix, not counting what this registration replaces (a refresh, a restart).
    let over = this.overQuota(endpoint.address, replaced)
    if (over) {
      // Expired registrations still count until the sweep: free them, and count again.
      this.expire(now)
      over = this.overQuota(
        endpoint.address,
        replaced.filter((r) => this.byName.get(r.name) === r),
      )
    }
    if (over) return { ok: false, code: 'over_quota', message: over }
    for (const r of replaced) if (this.byName.get(r.name) === r) this.remove(r.name)
    // Full: expired names go first, then the registration idle longest (refreshed least recently): the table degrades,
    // it does not close, and a flooder's own quota keeps it from evicting more than its share.
    if (this.byName.size >= this.maxRegistrations) this.expire(now)
    let evicted: Registration | undefined
    if (this.byName.size >= this.maxRegistrations) {
      for (const r of this.byName.values()) if (!evicted || r.expiresAt < evicted.expiresAt) evicted = r
      if (evicted) this.remove(evicted.name)
    }
    const registration: Registration = { name, key, endpoint, local, expiresAt: now + this.ttlMs }
    this.byName.set(name, registration)
    this.byEndpoint.set(formatEndpoint(endpoint), registration)
    this.count(endpoint.address, 1)
    this.sorted = undefined
    return evicted ? { ok: true, registration, evicted } : { ok: true, registration }
  }

  /** Why one more registration from `address` is over its quotas, or undefined. */
  private overQuota(address: string, replaced: Registration[]): string | undefined {
    const prefix = addressPrefix(address)
    const mine = replaced.filter((r) => r.endpoint.address === address).length
    const myPrefix = replaced.filter((r) => addressPrefix(r.endpoint.address) === prefix).length
    if ((this.perAddress.get(address) ?? 0) - mine >= this.quotas.perAddress) {
      return `${this.quotas.perAddress} names are registered from your address already; one must leave first`
    }
    if ((this.perPrefix.get(prefix) ?? 0) - myPrefix >= this.quotas.perPrefix) {
      return `${this.quotas.perPrefix} names are registered from your network (${prefix}) already; one must leave first`
    }
    return undefined
  }

  private count(address: string, delta: number): void {
    for (const [table, key] of [
      [this.perAddress, address],
      [this.perPrefix, addressPrefix(address)],
    ] as const) {
      const n = (table.get(key) ?? 0) + delta
      if (n > 0) table.set(key, n)
      else table.delete(key)
    }
  }

  /** The registration behind an endpoint, refreshed; undefined if unknown or expired. */
  touch(endpoint: Endpoint, now: number): Registration | undefined {
    const registration = this.at(endpoint, now)
    if (registration) registration.expiresAt = now + this.ttlMs
    return registration
  }

  at(endpoint: Endpoint, now: number): Registration | undefined {
    const registration = this.byEndpoint.get(formatEndpoint(endpoint))
    return registration && registration.expiresAt > now ? registration : undefined
  }

  get(name: string, now: number): Registration | undefined {
    const registration = this.byName.get(name)
    return registration && registration.expiresAt > now ? registration : undefined
  }

  remove(name: string): void {
    const registration = this.byName.get(name)
    if (!registration) return
    this.byName.delete(name)
    const key = formatEndpoint(registration.endpoint)
    if (this.byEndpoint.get(key) === registration) this.byEndpoint.delete(key)
    this.count(registration.endpoint.address, -1)
    this.sorted = undefined
  }

  /** Drops every registration whose keepalive stopped; returns the names dropped. */
  expire(now: number): string[] {
    const expired = [...this.byName.values()].filter((r) => r.expiresAt <= now).map((r) => r.name)
    for (const name of expired) this.remove(name)
    return expired
  }

  /** Every registration online. */
  all(now: number): Registration[] {
    return [...this.byName.values()].filter((r) => r.expiresAt > now)
  }

  names(now: number): string[] {
    return [...this.byName.values()]
      .filter((r) => r.expiresAt > now)
      .map((r) => r.name)
      .sort()
  }

  /**
   * One page of the names online, sorted: those after `after`, whose folded form contains the folded `query` (so
   * "ali" finds "Alice" and "ａｌｉｃｅ"), at most `size`, and whether more follow. The next page starts after the last.
   */
  page(now: number, options: { query?: string; after?: string; size: number; without?: string }): ListPage {
    this.sorted ??= [...this.byName.keys()].sort().map((name) => ({ name, folded: foldName(name) }))
    const query = options.query ? foldName(options.query) : ''
    const names: string[] = []
    let more = false
    for (const entry of this.sorted) {
      if (options.after !== undefined && entry.name <= options.after) continue
      if (entry.name === options.without || !entry.folded.includes(query) || !this.get(entry.name, now)) continue
      if (names.length === options.size) {
        more = true
        break
      }
      names.push(entry.name)
    }
    return { names, more }
  }
}
