// How a name gets registered: a stateless cookie proves the address, then a signed challenge proves the key and sets
// up the channel: the server signs the transcript with its long-term key, the client with its identity key, and both
// derive the channel's keys from their ephemeral X25519 keys.
import { randomBytes, verify, type KeyObject } from 'node:crypto'
import type { Endpoint } from '../core/types'
import { CookieJar } from './guard'
import { parseRsaPublicKey } from './rsa-key'
import {
  ChannelEnd,
  nameProblem,
  encodeServerKey,
  ephemeralKey,
  formatEndpoint,
  PSS,
  registrationProof,
  signTranscript,
  type ClientMessage,
  type EphemeralKey,
  type NatType,
  type ServerMessage,
  type Transcript,
} from '../protocol'

export interface Admitted {
  name: string
  key: string
  local: Endpoint[]
  nat: NatType
  instance?: string
  /** The channel this registration set up: every later datagram to and from it is sealed under it. */
  channel: ChannelEnd
}

interface Pending {
  name: string
  key: string
  /** The key, parsed once at `register` (parsing a PEM is the dearest step after the signature check). */
  publicKey: KeyObject
  nonce: string
  expiresAt: number
  transcript: Transcript
  eph: EphemeralKey
  signature: string
  /** The channel's server end, derived at the first sealed frame from this endpoint: the proof comes sealed under it. */
  channel?: ChannelEnd
  /** The signature that proved it: kept until the entry expires, so a retransmitted proof gets the same answer. */
  proof?: string
  /** What the proof admitted (with the sealed `local`, `nat`, `instance`), answered again to a retransmitted proof. */
  admitted?: Admitted
}

export class Admission {
  private readonly cookies: CookieJar
  /** Registrations waiting for their proof, per endpoint; only cookie-checked endpoints get an entry. */
  private readonly pending = new Map<string, Pending>()
  private readonly serverKeyText: string
  /** When the expired pending entries were last dropped: at most once a second (or when full), not on every `register`. */
  private swept = 0

  constructor(
    /** The server's long-term Ed25519 private key, which signs every challenge. */
    private readonly serverKey: KeyObject,
    private readonly options: { maxPending?: number; pendingMs?: number; cookieMs?: number; now?: () => number } = {},
  ) {
    this.cookies = new CookieJar(options.cookieMs ?? 60_000, this.now)
    this.serverKeyText = encodeServerKey(serverKey)
  }

  private now = () => (this.options.now ?? Date.now)()

  /** `hello` → a cookie for this endpoint. Stores nothing. */
  hello(message: Extract<ClientMessage, { t: 'hello' }>, from: Endpoint): Extract<ServerMessage, { t: 'cookie' }> {
    return { t: 'cookie', rid: message.rid, cookie: this.cookies.issue(from) }
  }

  /** `register` with a valid cookie → a challenge to sign; the registration waits for the proof. */
  register(message: Extract<ClientMessage, { t: 'register' }>, from: Endpoint): ServerMessage {
    if (!this.cookies.valid(from, message.cookie)) {
      return { t: 'error', rid: message.rid, code: 'bad_cookie', message: 'say hello first' }
    }
    const badName = nameProblem(message.name)
    if (badName) return { t: 'error', rid: message.rid, code: 'bad_request', message: badName }
    const now = this.now()
    const maxPending = this.options.maxPending ?? 4096
    if (now - this.swept >= 1000 || this.pending.size >= maxPending) {
      this.swept = now
      for (const [at, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(at)
    }
    // A resent `register` (its answer lost or late) gets the same challenge: a new nonce would void the proof of a client
    // that then receives the first answer after all.
    const waiting = this.pending.get(formatEndpoint(from))
    if (
      waiting &&
      waiting.expiresAt > now &&
      waiting.proof === undefined &&
      waiting.name === message.name &&
      waiting.key === message.key &&
      waiting.transcript.clientEph === message.eph
    ) {
      return this.challenge(message.rid, waiting)
    }
    if (this.pending.size >= maxPending) {
      return { t: 'error', rid: message.rid, code: 'full', message: 'too many registrations at once; try again' }
    }
    const publicKey = parseRsaPublicKey(message.key)
    if (typeof publicKey === 'string') return { t: 'error', rid: message.rid, code: 'bad_key', message: publicKey }
    const nonce = randomBytes(16).toString('hex')
    const { name, key } = message
    const eph = ephemeralKey()
    const transcript: Transcript = {
      nonce,
      name,
      clientKey: key,
      clientEph: message.eph,
      serverEph: eph.public,
      serverKey: this.serverKeyText,
    }
    const entry: Pending = {
      name,
      key,
      publicKey,
      nonce,
      expiresAt: now + (this.options.pendingMs ?? 10_000),
      transcript,
      eph,
      signature: signTranscript(this.serverKey, transcript),
    }
    this.pending.set(formatEndpoint(from), entry)
    return this.challenge(message.rid, entry)
  }

  private challenge(rid: string, entry: Pending): ServerMessage {
    return {
      t: 'challenge',
      rid,
      nonce: entry.nonce,
      eph: entry.eph.public,
      skey: this.serverKeyText,
      ssig: entry.signature,
    }
  }

  /**
   * The channel a registration waiting at `from` set up (its challenge's keys), under which its `prove` comes sealed;
   * undefined when none waits (or it expired, or its ephemeral key is unusable).
   */
  channelAt(from: Endpoint): ChannelEnd | undefined {
    const entry = this.pending.get(formatEndpoint(from))
    if (!entry || entry.expiresAt <= this.now()) return undefined
    entry.channel ??= ChannelEnd.derive('server', entry.eph, entry.transcript.clientEph, entry.transcript)
    return entry.channel
  }

  /** A `prove` that opened under `channelAt(from)` → the admitted registration, or the error to send (sealed). */
  prove(message: Extract<ClientMessage, { t: 'prove' }>, from: Endpoint): Admitted | ServerMessage {
    const entry = this.pending.get(formatEndpoint(from))
    if (!entry?.channel || entry.expiresAt <= this.now()) {
      return {
        t: 'error',
        rid: message.rid,
        code: 'bad_request',
        message: 'no registration waits for a proof from here',
      }
    }
    if (entry.proof !== undefined) {
      // Our answer was lost and the client sent its proof again: the same proof is admitted again (the same name, key
      // and endpoint, so registering it again only refreshes it), anything else is not.
      if (entry.proof !== message.sig || !entry.admitted)
        return { t: 'error', rid: message.rid, code: 'bad_request', message: 'this registration is already proven' }
      return entry.admitted
    }
    let valid = false
    try {
      valid = verify(
        'sha256',
        registrationProof(entry.transcript),
        { key: entry.publicKey, ...PSS },
        Buffer.from(message.sig, 'base64'),
      )
    } catch {
      valid = false
    }
    if (!valid)
      return { t: 'error', rid: message.rid, code: 'bad_proof', message: 'the signature does not match the key' }
    entry.proof = message.sig
    const { local, nat = 'unknown', instance } = message
    entry.admitted = { name: entry.name, key: entry.key, local, nat, instance, channel: entry.channel }
    return entry.admitted
  }

  get waiting(): number {
    return this.pending.size
  }
}
