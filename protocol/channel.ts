// The authenticated client–server channel: the server's long-term Ed25519 key (pinned by clients like an ssh host key),
// the transcript a registration signs on both sides, the keys it derives, and CHANNEL frames sealed under them.
// Pure: no sockets, no timers, no files.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { FrameKind, HEADER_BYTES, MAX_DATAGRAM_BYTES, frameHeader } from './frames'

/** Bytes a CHANNEL frame adds to the inner frame it seals: counter (8) and GCM tag (16), plus its own header (3), minus
 *  the inner header's magic and version (2): the inner kind byte is sealed with the body. */
export const CHANNEL_OVERHEAD = 8 + 16 + HEADER_BYTES - 2
/** How far behind the highest counter seen a late frame may still arrive once (as IPsec's 64-wide window). */
export const REPLAY_WINDOW = 64

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest()
/** The public half's SPKI DER, from a private or a public key object. */
const spki = (key: KeyObject) =>
  (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })

/** A server key's fingerprint, as clients pin and print it: `SHA256:` and the base64url SHA-256 of its SPKI DER. */
export function serverFingerprint(key: KeyObject): string {
  return `SHA256:${b64u(sha256(spki(key)))}`
}

/** A server's public key as the challenge carries it: base64url of its SPKI DER. */
export function encodeServerKey(key: KeyObject): string {
  return b64u(spki(key))
}

/** The server's public key from a challenge; undefined unless it is an Ed25519 key. */
export function decodeServerKey(text: string): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(text, 'base64url'), format: 'der', type: 'spki' })
    return key.asymmetricKeyType === 'ed25519' ? key : undefined
  } catch {
    return undefined
  }
}

export interface EphemeralKey {
  privateKey: KeyObject
  /** The raw X25519 public key, base64url (43 characters). */
  public: string
}

/** A fresh X25519 key pair for one registration. */
export function ephemeralKey(): EphemeralKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const jwk = publicKey.export({ format: 'jwk' })
  return { privateKey, public: jwk.x! }
}

/** Everything one registration agrees on; the server signs it, the client signs it, and the keys come from it. */
export interface Transcript {
  nonce: string
  name: string
  /** The client's RSA identity key (PEM), as registered. */
  clientKey: string
  clientEph: string
  serverEph: string
  /** The server's long-term key, as `encodeServerKey` gives it. */
  serverKey: string
}

export function transcriptBytes(t: Transcript): Buffer {
  // Every field is hex, base64url or a name (no newline: NAME_PATTERN), so the lines parse one way.
  return Buffer.from(
    [
      'udsu-server-v1',
      t.nonce,
      t.name,
      sha256(t.clientKey).toString('hex'),
      t.clientEph,
      t.serverEph,
      t.serverKey,
    ].join('\n'),
    'utf8',
  )
}

/** The server's signature over a transcript (Ed25519, base64url), as its challenge carries it. */
export function signTranscript(serverPrivateKey: KeyObject, t: Transcript): string {
  return b64u(sign(null, transcriptBytes(t), serverPrivateKey))
}

export function verifyTranscript(serverKey: KeyObject, t: Transcript, signature: string): boolean {
  try {
    return verify(null, transcriptBytes(t), serverKey, Buffer.from(signature, 'base64url'))
  } catch {
    return false
  }
}

/** One side's end of the channel: it seals what it sends and opens what it receives, each direction under its own key. */
export class ChannelEnd {
  private sent = 0
  /** Highest counter opened, and a bitmap of the REPLAY_WINDOW counters at and below it that were opened. */
  private highest = -1
  private seen = 0n

  private constructor(
    private readonly sendKey: Buffer,
    private readonly receiveKey: Buffer,
    private readonly sendPrefix: Buffer,
    private readonly receivePrefix: Buffer,
  ) {}

  /**
   * Both sides' end from the ephemeral keys and the transcript; undefined if the agreement is degenerate (a low-order
   * point gives all zeros). The HKDF salt is the transcript's hash, so the keys belong to this registration alone.
   */
  static derive(
    role: 'client' | 'server',
    own: EphemeralKey,
    peerEph: string,
    transcript: Transcript,
  ): ChannelEnd | undefined {
    let shared: Buffer
    try {
      const peer = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerEph }, format: 'jwk' })
      shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer })
    } catch {
      return undefined
    }
    if (shared.every((byte) => byte === 0)) return undefined
    const okm = Buffer.from(
      hkdfSync('sha256', shared, sha256(transcriptBytes(transcript)), 'udsu-server-channel-v1', 64),
    )
    shared.fill(0)
    const [toServer, toClient] = [okm.subarray(0, 32), okm.subarray(32, 64)]
    const [c2s, s2c] = [Buffer.of(0, 0, 0, 1), Buffer.of(0, 0, 0, 2)]
    return role === 'client'
      ? new ChannelEnd(Buffer.from(toServer), Buffer.from(toClient), c2s, s2c)
      : new ChannelEnd(Buffer.from(toClient), Buffer.from(toServer), s2c, c2s)
  }

  /**
   * Seals a whole udsu frame (SERVER or RELAY) into a CHANNEL frame: `header · counter u64 · AES-256-GCM(kind · body) ·
   * tag`, the header and counter authenticated as AAD. Throws when the result would exceed a datagram.
   */
  seal(inner: Buffer): Buffer {
    if (inner.length < HEADER_BYTES) throw new Error('not a frame')
    if (inner.length + CHANNEL_OVERHEAD > MAX_DATAGRAM_BYTES)
      throw new Error(`a sealed frame of ${inner.length + CHANNEL_OVERHEAD} bytes exceeds ${MAX_DATAGRAM_BYTES}`)
    const counter = Buffer.alloc(8)
    counter.writeBigUInt64BE(BigInt(this.sent++))
    const header = frameHeader(FrameKind.Channel)
    const cipher = createCipheriv('aes-256-gcm', this.sendKey, Buffer.concat([this.sendPrefix, counter]))
    cipher.setAAD(Buffer.concat([header, counter]))
    const sealed = Buffer.concat([cipher.update(inner.subarray(2)), cipher.final()])
    return Buffer.concat([header, counter, sealed, cipher.getAuthTag()])
  }

  /**
   * Opens a CHANNEL frame's body into the inner frame's kind and body; undefined when it fails its tag, is a replay, or
   * fell out of the window. Nothing changes unless the tag verifies.
   */
  open(body: Buffer): { kind: number; body: Buffer } | undefined {
    if (body.length < 8 + 1 + 16) return undefined
    const counterBytes = body.subarray(0, 8)
    const counter = counterBytes.readBigUInt64BE()
    if (counter > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
    const n = Number(counter)
    if (!this.fresh(n)) return undefined
    let plain: Buffer
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.receiveKey,
        Buffer.concat([this.receivePrefix, counterBytes]),
      )
      decipher.setAAD(Buffer.concat([frameHeader(FrameKind.Channel), counterBytes]))
      decipher.setAuthTag(body.subarray(body.length - 16))
      plain = Buffer.concat([decipher.update(body.subarray(8, body.length - 16)), decipher.final()])
    } catch {
      return undefined
    }
    this.mark(n)
    return { kind: plain[0], body: plain.subarray(1) }
  }

  private fresh(n: number): boolean {
    if (n > this.highest) return true
    const behind = this.highest - n
    return behind < REPLAY_WINDOW && (this.seen & (1n << BigInt(behind))) === 0n
  }

  private mark(n: number): void {
    const mask = (1n << BigInt(REPLAY_WINDOW)) - 1n
    if (n > this.highest) {
      const shift = n - this.highest
      this.seen = shift >= REPLAY_WINDOW ? 1n : ((this.seen << BigInt(shift)) | 1n) & mask
      this.highest = n
    } else {
      this.seen |= 1n << BigInt(this.highest - n)
    }
  }
}
