// The frame every udsu datagram is: magic, version, kind, body. Plugins own the bodies of their kinds.

/** First byte of every udsu datagram, so stray traffic is told apart at once. */
export const MAGIC = 0xd5
export const VERSION = 1
export const HEADER_BYTES = 3
/** No datagram we send or accept is larger: it stays under the common 1280-byte IPv6 minimum MTU with room for headers. */
export const MAX_DATAGRAM_BYTES = 1200

export const FrameKind = {
  /** Client ↔ rendezvous server control (JSON). */
  Server: 1,
  /** Peer ↔ peer path discovery and keepalive (JSON, no user content). */
  Probe: 2,
  /** Peer ↔ peer end-to-end handshake (binary, signed). */
  Handshake: 3,
  /** Peer ↔ peer sealed payload (binary, AEAD). */
  Data: 4,
  /** A frame forwarded by the rendezvous server between two peers (binary). */
  Relay: 5,
  /** Client ↔ rendezvous server after registration: a SERVER or RELAY frame sealed under the registration's keys. */
  Channel: 6,
} as const
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]
const KINDS = new Set<number>(Object.values(FrameKind))

export interface Frame {
  kind: FrameKind
  body: Buffer
}

export function frameHeader(kind: FrameKind): Buffer {
  return Buffer.from([MAGIC, VERSION, kind])
}

export function encodeFrame(kind: FrameKind, body: Uint8Array): Buffer {
  const frame = Buffer.concat([frameHeader(kind), body])
  if (frame.length > MAX_DATAGRAM_BYTES) throw new Error(`frame of ${frame.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`)
  return frame
}

/** Parses a datagram's frame; undefined for anything that is not a well-formed udsu frame. */
export function decodeFrame(bytes: Buffer): Frame | undefined {
  if (bytes.length < HEADER_BYTES || bytes.length > MAX_DATAGRAM_BYTES) return undefined
  if (bytes[0] !== MAGIC || bytes[1] !== VERSION || !KINDS.has(bytes[2])) return undefined
  return { kind: bytes[2] as FrameKind, body: bytes.subarray(HEADER_BYTES) }
}

/** A JSON object as a frame body; `t` names the message type. */
export interface JsonMessage {
  t: string
  [field: string]: unknown
}

export function encodeJson(kind: FrameKind, message: JsonMessage): Buffer {
  return encodeFrame(kind, Buffer.from(JSON.stringify(message), 'utf8'))
}

/** Parses a JSON body; undefined unless it is an object with a string `t`. */
export function decodeJson(body: Buffer): JsonMessage | undefined {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  return typeof (value as JsonMessage).t === 'string' ? (value as JsonMessage) : undefined
}

/** The rendezvous server a client uses when neither the config nor a flag names one. */
export const DEFAULT_SERVER = '127.0.0.1:7777'

/**
 * `host:port`, optionally `#fingerprint` (the server key a client expects, `SHA256:…` as the server prints it) →
 * endpoint; throws a clear error for anything else.
 */
export function parseHostPort(text: string): { host: string; port: number; fingerprint?: string } {
  const match = /^\[?([^\]\s#]+?)\]?:(\d{1,5})(?:#(SHA256:[A-Za-z0-9_-]{43}))?$/.exec(text.trim())
  const port = match ? Number(match[2]) : NaN
  if (!match || port < 1 || port > 65535) throw new Error(`"${text}" is not host:port (e.g. 127.0.0.1:7777)`)
  return { host: match[1], port, ...(match[3] ? { fingerprint: match[3] } : {}) }
}

export function isEndpoint(value: unknown): value is { address: string; port: number } {
  const v = value as { address?: unknown; port?: unknown }
  return (
    typeof v === 'object' && v !== null && typeof v.address === 'string' && v.address.length <= 64 &&
    Number.isInteger(v.port) && (v.port as number) > 0 && (v.port as number) < 65536
  )
}

export const sameEndpoint = (a: { address: string; port: number }, b: { address: string; port: number }) =>
  a.address === b.address && a.port === b.port

export const formatEndpoint = (e: { address: string; port: number }) => `${e.address}:${e.port}`
