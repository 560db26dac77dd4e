// The frame every udsu datagram is: magic, version, kind, body. Plugins own the bodies of their kinds; the kinds
// themselves are registered (FrameKinds), so a plugin outside udsu can add one and an unknown kind is dropped.

/** First byte of every udsu datagram, so stray traffic is told apart at once. */
export const MAGIC = 0xd5
export const VERSION = 1
export const HEADER_BYTES = 3
/** No datagram we send or accept is larger: it stays under the common 1280-byte IPv6 minimum MTU with room for headers. */
export const MAX_DATAGRAM_BYTES = 1200

/** The kinds udsu itself uses, reserved by the core: no plugin may register one of these numbers. */
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

/** A plugin's own frame kind, declared in its definition (`frames`): a number no other plugin uses, and a name. */
export interface FrameKindDeclaration {
  /** The kind byte: an integer in FIRST_PLUGIN_KIND..255 (1..15 are udsu's, now and to come). */
  kind: number
  /** What the frames are, for errors and logs: 1 to 32 letters, digits, "_" or "-". */
  name: string
}

/** Kinds below this are the core's (FrameKind and future ones); plugins register from here to 255. */
export const FIRST_PLUGIN_KIND = 16
const KIND_NAME = /^[A-Za-z0-9_-]{1,32}$/
/** Who owns the built-in kinds in a duplicate's error. */
export const CORE_OWNER = 'udsu core'

/** Which frame kinds a client accepts, and who registered each. The core's are there from the start. */
export class FrameKinds {
  private readonly kinds = new Map<number, { name: string; owner: string }>()

  constructor() {
    for (const [name, kind] of Object.entries(FrameKind))
      this.kinds.set(kind, { name: name.toUpperCase(), owner: CORE_OWNER })
  }

  /** Adds `owner`'s kind; throws, naming both owners, when the number is taken, or saying what is wrong with it. */
  register(declaration: FrameKindDeclaration, owner: string): void {
    const { kind, name } = declaration ?? ({} as FrameKindDeclaration)
    if (!Number.isInteger(kind) || kind < FIRST_PLUGIN_KIND || kind > 255) {
      throw new Error(
        `plugin "${owner}" declares frame kind ${String(kind)}: a kind must be an integer in ${FIRST_PLUGIN_KIND}..255 (below ${FIRST_PLUGIN_KIND} are udsu's own)`,
      )
    }
    if (typeof name !== 'string' || !KIND_NAME.test(name)) {
      throw new Error(
        `plugin "${owner}" declares frame kind ${kind} with name ${JSON.stringify(name)}: a name is 1 to 32 letters, digits, "_" or "-"`,
      )
    }
    const taken = this.kinds.get(kind)
    if (taken) {
      throw new Error(
        `frame kind ${kind} is declared by plugin "${owner}" (${name}) and by ${taken.owner === CORE_OWNER ? CORE_OWNER : `plugin "${taken.owner}"`} (${taken.name}): each kind has one owner; pick another number`,
      )
    }
    this.kinds.set(kind, { name, owner })
  }

  has(kind: number): boolean {
    return this.kinds.has(kind)
  }

  /** The registered name of a kind (SERVER, PROBE, … for the core's), or undefined. */
  nameOf(kind: number): string | undefined {
    return this.kinds.get(kind)?.name
  }
}

/** The core's kinds only: what the rendezvous server and the relay accept. */
export const BUILT_IN_KINDS: { has(kind: number): boolean } = new FrameKinds()

export interface Frame {
  /** A FrameKind, or a kind a plugin registered. */
  kind: number
  body: Buffer
}

export function frameHeader(kind: number): Buffer {
  return Buffer.from([MAGIC, VERSION, kind])
}

export function encodeFrame(kind: number, body: Uint8Array): Buffer {
  const frame = Buffer.concat([frameHeader(kind), body])
  if (frame.length > MAX_DATAGRAM_BYTES) throw new Error(`frame of ${frame.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`)
  return frame
}

/** Whether the bytes carry udsu's frame header (magic and version), of any kind. */
export function hasFrameHeader(bytes: Uint8Array): boolean {
  return (
    bytes.length >= HEADER_BYTES && bytes.length <= MAX_DATAGRAM_BYTES && bytes[0] === MAGIC && bytes[1] === VERSION
  )
}

/** Parses a datagram's frame; undefined for anything that is not a well-formed udsu frame of a kind in `kinds`. */
export function decodeFrame(bytes: Buffer, kinds: { has(kind: number): boolean } = BUILT_IN_KINDS): Frame | undefined {
  if (!hasFrameHeader(bytes) || !kinds.has(bytes[2])) return undefined
  return { kind: bytes[2], body: bytes.subarray(HEADER_BYTES) }
}

/** A JSON object as a frame body; `t` names the message type. */
export interface JsonMessage {
  t: string
  [field: string]: unknown
}

export function encodeJson(kind: number, message: JsonMessage): Buffer {
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
