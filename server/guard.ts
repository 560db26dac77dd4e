// What keeps the server standing under abuse: stateless address cookies and per-source rate limits, both bounded.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Endpoint } from '../core/types'

/**
 * Stateless cookies: an HMAC of the source endpoint and a time bucket under a secret that lives only in memory.
 * A client that echoes a valid cookie proves it receives at its claimed address, so the server can do work for it
 * without storing anything first (no spoofed-source amplification, no state exhaustion).
 */
export class CookieJar {
  private readonly secret = randomBytes(32)

  constructor(
    /** How long a cookie stays valid: it is accepted in its own bucket and the next one. */
    private readonly lifetimeMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  issue(endpoint: Endpoint): string {
    return this.mac(endpoint, Math.floor(this.now() / this.lifetimeMs))
  }

  valid(endpoint: Endpoint, cookie: unknown): boolean {
    if (typeof cookie !== 'string' || !/^[0-9a-f]{32}$/.test(cookie)) return false
    const bucket = Math.floor(this.now() / this.lifetimeMs)
    const given = Buffer.from(cookie, 'hex')
    return [bucket, bucket - 1].some((b) => timingSafeEqual(given, Buffer.from(this.mac(endpoint, b), 'hex')))
  }

  private mac(endpoint: Endpoint, bucket: number): string {
    return createHmac('sha256', this.secret)
      .update(`${endpoint.address}|${endpoint.port}|${bucket}`)
      .digest('hex')
      .slice(0, 32)
  }
}

/**
 * A token bucket per source address, in a table of bounded size: when full, the stalest entries go first.
 * An address, not an endpoint, so a flooder cannot escape the limit by changing ports.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxSources = 65_536,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for this source; false when it has none left. */
  allow(source: string, cost = 1): boolean {
    const now = this.now()
    let bucket = this.buckets.get(source)
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond)
      bucket.at = now
      this.buckets.delete(source) // re-inserted below: the Map's order is then least recently seen first
    } else {
      bucket = { tokens: this.burst, at: now }
      if (this.buckets.size >= this.maxSources) this.buckets.delete(this.buckets.keys().next().value as string)
    }
    this.buckets.set(source, bucket)
    if (bucket.tokens < cost) return false
    bucket.tokens -= cost
    return true
  }

  get size(): number {
    return this.buckets.size
  }
}
