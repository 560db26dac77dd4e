// Who is online: names bound to keys and endpoints, with expiry. Pure state, no sockets, so it is easy to test.
import type { Endpoint } from '../core/types'
import { formatEndpoint, type ChannelEnd, type NatType } from '../protocol'

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

export type RegisterResult = { ok: true; registration: Registration } | { ok: false; code: 'name_taken' | 'full'; message: string }

export class Registry {
  private readonly byName = new Map<string, Registration>()
  private readonly byEndpoint = new Map<string, Registration>()

  constructor(
    private readonly ttlMs: number,
    private readonly maxRegistrations: number,
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
    if (atEndpoint && atEndpoint.name !== name) this.remove(atEndpoint.name)
    if (existing) this.remove(name)
    // Expired names still hold slots until the server's sweep; free them before refusing anyone.
    if (this.byName.size >= this.maxRegistrations) this.expire(now)
    if (this.byName.size >= this.maxRegistrations) {
      return { ok: false, code: 'full', message: 'the server has reached its registration limit; try later' }
    }
    const registration: Registration = { name, key, endpoint, local, expiresAt: now + this.ttlMs }
    this.byName.set(name, registration)
    this.byEndpoint.set(formatEndpoint(endpoint), registration)
    return { ok: true, registration }
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
    return [...this.byName.values()].filter((r) => r.expiresAt > now).map((r) => r.name).sort()
  }
}
