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
}
/** Server → each registered client when it stops (SIGTERM), sealed: register elsewhere, or again once it is back. */
export type ClosingNotice = {
  t: 'closing'
}

const isRid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{1,32}$/.test(v)

/** A health check's shape, or undefined when the message is something else. */
export function parseHealthCheck(m: JsonMessage): HealthCheck | undefined {
  return m.t === 'health' && isRid(m.rid) ? { t: 'health', rid: m.rid } : undefined
}

export function parseHealthReply(m: JsonMessage): HealthReply | undefined {
  return m.t === 'healthy' && isRid(m.rid) ? { t: 'healthy', rid: m.rid } : undefined
}

export const healthReply = (check: HealthCheck): HealthReply => ({ t: 'healthy', rid: check.rid })

export const CLOSING: ClosingNotice = { t: 'closing' }
