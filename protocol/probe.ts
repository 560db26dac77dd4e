// PROBE frames that prove they come from one of the two peers an introduction joined: each carries a MAC keyed by the
// introduction's token (which reaches the two peers only sealed in the client–server channel) and a sequence number, so
// a probe sniffed on the way and replayed from elsewhere cannot open, move or close a path. Pure: no sockets, no timers.
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { JsonMessage } from './frames'

export type ProbeType = 'punch' | 'punch-ack' | 'keepalive' | 'bye'
const TYPES: readonly string[] = ['punch', 'punch-ack', 'keepalive', 'bye']

export interface Probe {
  t: ProbeType
  from: string
  to: string
  /** The sender's count of probes, growing: a path changes only on a number above any seen under that token. */
  seq: number
  /** HMAC-SHA256 over the rest under the introduction's token, 16 bytes, hex. */
  mac: string
}

function mac(token: string, t: string, from: string, to: string, seq: number): string {
  return createHmac('sha256', Buffer.from(token, 'hex'))
    .update(`udsu-probe-v1\n${t}\n${from}\n${to}\n${seq}`)
    .digest()
    .subarray(0, 16)
    .toString('hex')
}

export function makeProbe(token: string, t: ProbeType, from: string, to: string, seq: number): Probe {
  return { t, from, to, seq, mac: mac(token, t, from, to, seq) }
}

/** A probe's shape, unchecked; undefined if it is not one. */
export function parseProbe(m: JsonMessage): Probe | undefined {
  return TYPES.includes(m.t) &&
    typeof m.from === 'string' &&
    typeof m.to === 'string' &&
    Number.isSafeInteger(m.seq) &&
    (m.seq as number) >= 0 &&
    typeof m.mac === 'string' &&
    /^[0-9a-f]{32}$/.test(m.mac)
    ? (m as unknown as Probe)
    : undefined
}

/** The token (of those given) under which the probe's MAC verifies, or undefined. */
export function probeToken(probe: Probe, tokens: readonly string[]): string | undefined {
  const given = Buffer.from(probe.mac, 'hex')
  return tokens.find((token) =>
    timingSafeEqual(given, Buffer.from(mac(token, probe.t, probe.from, probe.to, probe.seq), 'hex')),
  )
}
