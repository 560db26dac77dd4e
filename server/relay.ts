// The relay's policy: RELAY frames flow between two registered peers that both asked for it, within a budget.
// The frame codec is in protocol/relay.ts, shared with the client.
import type { Registration } from './registry'

export interface RelayLimits {
  /** Frames per second one peer may send through the relay (the bucket holds two seconds' worth). */
  framesPerSec: number
  /** Bytes per second one peer may send through the relay. */
  bytesPerSec: number
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = { framesPerSec: 100, bytesPerSec: 64 * 1024 }

/** A token bucket over frames and bytes, refilled by elapsed time. */
class Bucket {
  private frames: number
  private bytes: number
  private at: number

  constructor(
    private readonly limits: RelayLimits,
    now: number,
  ) {
    this.frames = limits.framesPerSec * 2
    this.bytes = limits.bytesPerSec * 2
    this.at = now
  }

  take(bytes: number, now: number): boolean {
    const seconds = Math.max(0, now - this.at) / 1000
    this.at = now
    this.frames = Math.min(this.limits.framesPerSec * 2, this.frames + seconds * this.limits.framesPerSec)
    this.bytes = Math.min(this.limits.bytesPerSec * 2, this.bytes + seconds * this.limits.bytesPerSec)
    if (this.frames < 1 || this.bytes < bytes) return false
    this.frames -= 1
    this.bytes -= bytes
    return true
  }
}

/**
 * Who asked to be relayed to whom, and each sender's budget. Consent is bound to the registration that gave it:
 * a client that registers again (restart, new address) must ask again, so a stale consent never carries frames.
 */
export class RelayPolicy {
  private readonly asked = new Map<Registration, Set<string>>()
  private readonly buckets = new WeakMap<Registration, Bucket>()

  constructor(private readonly limits: RelayLimits = DEFAULT_RELAY_LIMITS) {}

  /** Records that `from` wants frames relayed to and from `to`; true when `to` has asked for `from` as well. */
  ask(from: Registration, to: Registration): boolean {
    this.note(from, to.name)
    return this.allowed(from, to)
  }

  /** Records that `from` wants frames relayed with `name`, a client of another instance (which knows whether it asked too). */
  note(from: Registration, name: string): void {
    const set = this.asked.get(from) ?? new Set<string>()
    set.add(name)
    this.asked.set(from, set)
  }

  /** `from` asked to be relayed with `name`, under its current registration. */
  hasAsked(from: Registration, name: string): boolean {
    return Boolean(this.asked.get(from)?.has(name))
  }

  /** Both asked for each other under their current registrations. */
  allowed(from: Registration, to: Registration): boolean {
    return Boolean(this.asked.get(from)?.has(to.name) && this.asked.get(to)?.has(from.name))
  }

  /** The registrations that asked to be relayed with `name`. */
  askers(name: string): Registration[] {
    return [...this.asked].filter(([, names]) => names.has(name)).map(([registration]) => registration)
  }

  /** Spends from the sender's budget; false when the frame is over its rate. */
  spend(from: Registration, bytes: number, now: number): boolean {
    let bucket = this.buckets.get(from)
    if (!bucket) this.buckets.set(from, (bucket = new Bucket(this.limits, now)))
    return bucket.take(bytes, now)
  }

  /** Forgets consents of registrations that are gone, so the table stays as small as the registry. */
  prune(isCurrent: (registration: Registration) => boolean): void {
    for (const registration of this.asked.keys()) if (!isCurrent(registration)) this.asked.delete(registration)
  }
}
