// The rsa plugin's end-to-end bytes: its handshake messages (REQUEST, COOKIE, INIT, RESP), the labels its signatures
// and key schedule use, and the DATA body (session id, counter, ciphertext, tag). Described in docs/PROTOCOL.md
// ("Sessions: the rsa plugin"). Pure: no keys, no state; plugins/rsa/channel.ts keeps the state machine and the crypto.
import { MAX_NAME_BYTES } from './names'

/** A handshake message that is malformed, not for us, stale, replayed or not signed by the expected key. */
export class HandshakeRejected extends Error {
  override name = 'HandshakeRejected'
}

/** A DATA body that is malformed, for an unknown or expired session, replayed, or fails authentication. */
export class OpenFailed extends Error {
  override name = 'OpenFailed'
}

export type HandshakeType = 'request' | 'init' | 'resp' | 'cookie'

const TYPE_CODES: Record<HandshakeType, number> = { request: 0x01, init: 0x02, resp: 0x03, cookie: 0x04 }
const TYPE_NAMES = new Map<number, HandshakeType>([
  [0x01, 'request'],
  [0x02, 'init'],
  [0x03, 'resp'],
  [0x04, 'cookie'],
])

/** What the INIT signature covers starts with this label, then the signer's and verifier's fingerprints. */
export const HANDSHAKE_INIT_LABEL = Buffer.from('udsu-init-v1', 'ascii')
/** The same for RESP. */
export const HANDSHAKE_RESP_LABEL = Buffer.from('udsu-resp-v1', 'ascii')
/** The HKDF info of the key schedule starts with this label, then the initiator's and responder's fingerprints. */
export const HANDSHAKE_KEYS_LABEL = Buffer.from('udsu-keys-v1', 'ascii')

export const HANDSHAKE_NONCE_BYTES = 16
export const HANDSHAKE_COOKIE_BYTES = 16
/** The secret the initiator sends under RSA-OAEP. */
export const HANDSHAKE_SECRET_BYTES = 32
/** An AES-256-GCM key of the key schedule. */
export const HANDSHAKE_KEY_BYTES = 32
/** The fixed first part of a direction's 12-byte GCM nonce (the counter is the rest). */
export const HANDSHAKE_PREFIX_BYTES = 4
const X25519_BYTES = 32
const MIN_RSA_BYTES = 256
const MAX_RSA_BYTES = 1024

export const DATA_SESSION_ID_BYTES = 8
export const DATA_COUNTER_BYTES = 8
export const DATA_TAG_BYTES = 16
/** Bytes a DATA body adds to the plaintext: session id, counter and tag. */
export const DATA_OVERHEAD = DATA_SESSION_ID_BYTES + DATA_COUNTER_BYTES + DATA_TAG_BYTES
const TWO_TO_32 = 2 ** 32
// Counters above this cannot be held exactly in a JS number; we never send them, so such a body is forged.
const MAX_COUNTER_HIGH_WORD = 2 ** 21

// Fatal so that invalid bytes are rejected; ignoreBOM so that two different byte strings never decode to one name.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export interface RequestMessage {
  type: 'request'
  from: string
  to: string
  /** The responder's nonce and the cookie it echoes (all zeros when it has none yet); absent from the initiator's. */
  nonceR?: Buffer
  cookie?: Buffer
  /** The two names as sent (from and to, each with its length byte): what a cookie covers besides nonce and source. */
  names: Buffer
}

export interface CookieMessage {
  type: 'cookie'
  from: string
  to: string
  nonceR: Buffer
  cookie: Buffer
}

export interface InitMessage {
  type: 'init'
  from: string
  to: string
  ephemeral: Buffer
  nonceI: Buffer
  nonceR: Buffer
  encryptedSecret: Buffer
  signature: Buffer
  /** The message up to (not including) the signature length: what the signature covers. */
  signedPart: Buffer
}

export interface RespMessage {
  type: 'resp'
  from: string
  to: string
  ephemeral: Buffer
  nonceI: Buffer
  signature: Buffer
  signedPart: Buffer
}

export type HandshakeMessage = RequestMessage | InitMessage | RespMessage | CookieMessage

/** The sender's and receiver's names as UTF-8 (checked by encodeHandshakeName), the start of every message. */
export interface HandshakeNames {
  from: Buffer
  to: Buffer
}

/** A user name as a handshake carries it: 1 to MAX_NAME_BYTES bytes of UTF-8. Throws RangeError otherwise. */
export function encodeHandshakeName(name: string, what: string): Buffer {
  const bytes = Buffer.from(name, 'utf8')
  if (bytes.toString('utf8') !== name) throw new RangeError(`SecureChannel: ${what} is not valid Unicode text`)
  if (bytes.length === 0 || bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(
      `SecureChannel: ${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8, "${name}" is ${bytes.length}`,
    )
  }
  return bytes
}

function encodeHeader(type: HandshakeType, names: HandshakeNames): Buffer {
  return Buffer.concat([
    Buffer.of(TYPE_CODES[type], names.from.length),
    names.from,
    Buffer.of(names.to.length),
    names.to,
  ])
}

/** The initiator's REQUEST has no nonce; the responder's carries its nonce and the cookie (zeros until it has one). */
export function encodeRequest(names: HandshakeNames, nonceR: Buffer | undefined, cookie?: Buffer): Buffer {
  if (nonceR === undefined) return encodeHeader('request', names)
  return Buffer.concat([encodeHeader('request', names), nonceR, cookie ?? Buffer.alloc(HANDSHAKE_COOKIE_BYTES)])
}

export function encodeCookie(names: HandshakeNames, nonceR: Buffer, cookie: Buffer): Buffer {
  return Buffer.concat([encodeHeader('cookie', names), nonceR, cookie])
}

/** INIT: `sign` gets the part its signature covers (everything before the signature's length). */
export function encodeInit(
  names: HandshakeNames,
  fields: { ephemeral: Buffer; nonceI: Buffer; nonceR: Buffer; encryptedSecret: Buffer },
  sign: (signedPart: Buffer) => Buffer,
): Buffer {
  const signedPart = Buffer.concat([
    encodeHeader('init', names),
    fields.ephemeral,
    fields.nonceI,
    fields.nonceR,
    u16(fields.encryptedSecret.length),
    fields.encryptedSecret,
  ])
  return withSignature(signedPart, sign(signedPart))
}

/** RESP: `sign` gets the part its signature covers (everything before the signature's length). */
export function encodeResp(
  names: HandshakeNames,
  fields: { ephemeral: Buffer; nonceI: Buffer },
  sign: (signedPart: Buffer) => Buffer,
): Buffer {
  const signedPart = Buffer.concat([encodeHeader('resp', names), fields.ephemeral, fields.nonceI])
  return withSignature(signedPart, sign(signedPart))
}

function withSignature(signedPart: Buffer, signature: Buffer): Buffer {
  return Buffer.concat([signedPart, u16(signature.length), signature])
}

/** Reads a handshake message and checks its structure (not its signature). Throws HandshakeRejected if malformed. */
export function peekHandshake(body: Buffer): { type: HandshakeType; from: string; to: string } {
  const { type, from, to } = parseHandshake(body)
  return { type, from, to }
}

/** Parses and length-checks a whole handshake message; throws HandshakeRejected on anything malformed. */
export function parseHandshake(body: Buffer): HandshakeMessage {
  if (!Buffer.isBuffer(body)) throw new HandshakeRejected('handshake message is not a Buffer')
  const reader = new Reader(body)
  const code = reader.u8('type')
  const type = TYPE_NAMES.get(code)
  if (type === undefined) throw new HandshakeRejected(`unknown handshake type 0x${code.toString(16).padStart(2, '0')}`)
  const from = reader.name('from')
  const to = reader.name('to')
  const label = type.toUpperCase()
  switch (type) {
    case 'request': {
      const names = body.subarray(1, reader.offset)
      if (reader.remaining === 0) return { type, from, to, names }
      if (reader.remaining !== HANDSHAKE_NONCE_BYTES + HANDSHAKE_COOKIE_BYTES) {
        throw new HandshakeRejected(
          `REQUEST from "${from}": ${reader.remaining} bytes after the names, expected 0 or ${HANDSHAKE_NONCE_BYTES + HANDSHAKE_COOKIE_BYTES}`,
        )
      }
      return {
        type,
        from,
        to,
        names,
        nonceR: reader.take(HANDSHAKE_NONCE_BYTES, 'nonceR'),
        cookie: reader.take(HANDSHAKE_COOKIE_BYTES, 'cookie'),
      }
    }
    case 'cookie': {
      const nonceR = reader.take(HANDSHAKE_NONCE_BYTES, 'nonceR')
      const cookie = reader.take(HANDSHAKE_COOKIE_BYTES, 'cookie')
      reader.end(label)
      return { type, from, to, nonceR, cookie }
    }
    case 'init': {
      const ephemeral = reader.take(X25519_BYTES, 'ephemeral key')
      const nonceI = reader.take(HANDSHAKE_NONCE_BYTES, 'nonceI')
      const nonceR = reader.take(HANDSHAKE_NONCE_BYTES, 'nonceR')
      const encryptedSecret = reader.rsaField('encrypted secret')
      const signedPart = body.subarray(0, reader.offset)
      const signature = reader.rsaField('signature')
      reader.end(label)
      return { type, from, to, ephemeral, nonceI, nonceR, encryptedSecret, signature, signedPart }
    }
    case 'resp': {
      const ephemeral = reader.take(X25519_BYTES, 'ephemeral key')
      const nonceI = reader.take(HANDSHAKE_NONCE_BYTES, 'nonceI')
      const signedPart = body.subarray(0, reader.offset)
      const signature = reader.rsaField('signature')
      reader.end(label)
      return { type, from, to, ephemeral, nonceI, signature, signedPart }
    }
  }
}

/** The session id of a DATA body, as hex, to find the channel that can open it. Throws OpenFailed if too short. */
export function peekSessionId(body: Buffer): string {
  if (!Buffer.isBuffer(body) || body.length < DATA_OVERHEAD) {
    throw new OpenFailed(
      `DATA body too short: ${Buffer.isBuffer(body) ? body.length : 0} bytes, at least ${DATA_OVERHEAD} needed`,
    )
  }
  return body.subarray(0, DATA_SESSION_ID_BYTES).toString('hex')
}

/** A DATA counter as it is sent: 8 bytes, big-endian. */
export function encodeDataCounter(counter: number): Buffer {
  const bytes = Buffer.alloc(DATA_COUNTER_BYTES)
  bytes.writeUInt32BE(Math.floor(counter / TWO_TO_32), 0)
  bytes.writeUInt32BE(counter % TWO_TO_32, 4)
  return bytes
}

/** The counter of a DATA body (checked by peekSessionId first); undefined if beyond what any sender counts to. */
export function readDataCounter(body: Buffer): number | undefined {
  const high = body.readUInt32BE(DATA_SESSION_ID_BYTES)
  if (high >= MAX_COUNTER_HIGH_WORD) return undefined
  return high * TWO_TO_32 + body.readUInt32BE(DATA_SESSION_ID_BYTES + 4)
}

/** What a DATA body's tag authenticates besides the ciphertext: the caller's own bytes, then session id and counter. */
export function dataAad(callerAad: Buffer | undefined, sessionId: Buffer, counter: Buffer): Buffer {
  return callerAad === undefined ? Buffer.concat([sessionId, counter]) : Buffer.concat([callerAad, sessionId, counter])
}

/** Reads fields in order, checking each length before reading it. */
class Reader {
  offset = 0

  constructor(private readonly bytes: Buffer) {}

  get remaining(): number {
    return this.bytes.length - this.offset
  }

  take(length: number, field: string): Buffer {
    if (this.remaining < length) {
      throw new HandshakeRejected(`handshake message truncated: ${field} needs ${length} bytes, ${this.remaining} left`)
    }
    const slice = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return slice
  }

  u8(field: string): number {
    return this.take(1, field)[0]
  }

  name(field: string): string {
    const length = this.u8(`${field} length`)
    if (length === 0 || length > MAX_NAME_BYTES) {
      throw new HandshakeRejected(`handshake ${field} name is ${length} bytes, must be 1 to ${MAX_NAME_BYTES}`)
    }
    try {
      return STRICT_UTF8.decode(this.take(length, field))
    } catch (error) {
      if (error instanceof HandshakeRejected) throw error
      throw new HandshakeRejected(`handshake ${field} name is not valid UTF-8`)
    }
  }

  /** A 2-byte length, then an RSA-sized field (2048 to 8192 bits). */
  rsaField(field: string): Buffer {
    const length = this.take(2, `${field} length`).readUInt16BE(0)
    if (length < MIN_RSA_BYTES || length > MAX_RSA_BYTES) {
      throw new HandshakeRejected(`handshake ${field} is ${length} bytes, must be ${MIN_RSA_BYTES} to ${MAX_RSA_BYTES}`)
    }
    return this.take(length, field)
  }

  end(label: string): void {
    if (this.remaining !== 0) throw new HandshakeRejected(`${label} has ${this.remaining} unexpected trailing bytes`)
  }
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2)
  bytes.writeUInt16BE(value)
  return bytes
}
