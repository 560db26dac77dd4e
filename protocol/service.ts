// Messages about the service itself, not the rendezvous: the health check `udsu ping` sends, and the notice a draining
// server sends its clients. Beside the rendezvous messages (rendezvous.ts), in the one wire-format module.
import type { JsonMessage } from './frames'

/** Padding of a `health` request, so the `healthy` answer is never longer (the check needs no registration: no amplification). */
export const HEALTH_PAD = 'x'.repeat(24)

/** Client → server, from anyone: are you there? */
export type HealthCheck = {
  t: 'health'
  rid: string
  pad?: string
}
/** Server → client: the answer, from the port asked. */
export type HealthReply = {
  t: 'healthy'
  rid: string
  /** From an instance with `--redis`: whether Redis answers it (`down`: it serves its own clients alone). */
  redis?: 'up' | 'down'
}
/** Server → each registered client when it stops (SIGTERM), sealed: register elsewhere, or again once it is back. */
export type ClosingNotice = {
  t: 'closing'
  /** Why, for logs (clients act alike on both): `evicted` when the server's table was full and this registration made room. */
  reason?: 'stopping' | 'evicted'
}

const isRid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{1,32}$/.test(v)

/** A health check's shape, or undefined when the message is something else. */
export function parseHealthCheck(m: JsonMessage): HealthCheck | undefined {
  return m.t === 'health' && isRid(m.rid) ? { t: 'health', rid: m.rid } : undefined
}

export function parseHealthReply(m: JsonMessage): HealthReply | undefined {
  if (m.t !== 'healthy' || !isRid(m.rid)) return undefined
  return m.redis === 'up' || m.redis === 'down'
    ? { t: 'healthy', rid: m.rid, redis: m.redis }
    : { t: 'healthy', rid: m.rid }
}

export const healthReply = (check: HealthCheck): HealthReply => ({ t: 'healthy', rid: check.rid })

export const CLOSING: ClosingNotice = { t: 'closing' }
/** To a registration the server dropped to make room (its table full): register again, here or elsewhere. */
export const EVICTED: ClosingNotice = { t: 'closing', reason: 'evicted' }
