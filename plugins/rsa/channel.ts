// One end of an authenticated, forward-secret session between two named users. The bytes are protocol/handshake.ts.
// Pure: no I/O, no timers. The caller moves the returned bytes and decides when to call begin() again.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto'
import { checkPublicKey, fingerprintBytes, type RsaIdentity } from './identity'
// The bytes (protocol/handshake.ts), one name limit everywhere, and the RSA parameters the server's proof uses too.
import {
  dataAad,
  DATA_COUNTER_BYTES as COUNTER_BYTES,
  DATA_OVERHEAD,
  DATA_SESSION_ID_BYTES as SESSION_ID_BYTES,
  DATA_TAG_BYTES as TAG_BYTES,
  encodeCookie,
  encodeDataCounter,
  encodeHandshakeName,
  encodeInit,
  encodeRequest,
  encodeResp,
  HANDSHAKE_COOKIE_BYTES as COOKIE_BYTES,
  HANDSHAKE_INIT_LABEL as INIT_LABEL,
  HANDSHAKE_KEY_BYTES as KEY_BYTES,
  HANDSHAKE_KEYS_LABEL as KEYS_LABEL,
  HANDSHAKE_NONCE_BYTES as NONCE_BYTES,
  HANDSHAKE_PREFIX_BYTES as PREFIX_BYTES,
  HANDSHAKE_RESP_LABEL as RESP_LABEL,
  HANDSHAKE_SECRET_BYTES as SECRET_BYTES,
  HandshakeRejected,
  OpenFailed,
  parseHandshake,
  peekHandshake,
  peekSessionId,
  readDataCounter,
  MAX_NAME_BYTES,
  OAEP,
  PSS,
  type CookieMessage,
  type HandshakeNames,
  type HandshakeType,
  type InitMessage,
  type RequestMessage,
  type RespMessage,
} from '../../protocol'

// The format moved to protocol/handshake.ts; these stay importable from here for the plugin and its tests.
export { DATA_OVERHEAD, HandshakeRejected, OpenFailed, peekHandshake, peekSessionId, type HandshakeType }

/** seal() cannot encrypt: no session yet, or the session has sealed its maximum number of messages. */
export class SealRefused extends Error {
  override name = 'SealRefused'
}

export interface SecureChannelOptions {
  me: { name: string; identity: RsaIdentity }
  /** The peer's identity key as introduced (e.g. by the rendezvous server); checked with checkPublicKey. */
  peer: { name: string; publicKeyPem: string }
  /** Clock in ms; tests pass a fake one. */
  now?: () => number
  /** needsRekey() turns true after this many sealed messages (default 2^20). */
  rekeyAfterMessages?: number
  /** needsRekey() turns true once the session is this old (default 1 hour). */
  rekeyAfterMs?: number
  /** How long a replaced session still opens messages that were in flight (default 60 s). */
  graceMs?: number
  /** Hard stop: seal() refuses beyond this many messages in one session (default 2^32). */
  maxMessagesPerSession?: number
  /** The initiator gives up on an unanswered INIT after this long and asks afresh (default 10 s). */
  handshakeTimeoutMs?: number
  /** Shared by the channels of one client: each new INIT (an RSA signature) takes from it, whichever the peer. */
  initBudget?: InitBudget
  /** The secret the initiator's cookies are made under; shared by the channels of one client (default: its own). */
  cookies?: RequestCookies
}

/**
 * Stateless cookies for REQUESTs: a REQUEST makes the initiator do RSA work only if it echoes the cookie the initiator
 * made for that nonce, those names and the endpoint it came from, within the last one or two time buckets. The cookie
 * goes to the peer's path, so someone forging REQUESTs from other addresses never sees it.
 */
export interface RequestCookies {
  make(now: number, source: string, names: Buffer, nonceR: Buffer): Buffer
  valid(now: number, source: string, names: Buffer, nonceR: Buffer, cookie: Buffer): boolean
}

/** How long a cookie is valid: its own bucket and the next one (60 to 120 s). */
export const COOKIE_BUCKET_MS = 60_000
const COOKIE_LABEL = Buffer.from('udsu-cookie-v1', 'ascii')

/** Cookies under a random 32-byte secret that never leaves this process. */
export function requestCookies(secret: Buffer = randomBytes(32)): RequestCookies {
  const key = createSecretKey(Buffer.from(secret))
  const mac = (bucket: number, source: string, names: Buffer, nonceR: Buffer): Buffer => {
    const sourceBytes = Buffer.from(source, 'utf8')
    const bucketBytes = Buffer.alloc(8)
    bucketBytes.writeBigUInt64BE(BigInt(bucket))
    return createHmac('sha256', key)
      .update(COOKIE_LABEL)
      .update(bucketBytes)
      .update(u16(sourceBytes.length))
      .update(sourceBytes)
      .update(names)
      .update(nonceR)
      .digest()
      .subarray(0, COOKIE_BYTES)
  }
  return {
    make: (now, source, names, nonceR) => mac(Math.floor(now / COOKIE_BUCKET_MS), source, names, nonceR),
    valid(now, source, names, nonceR, cookie) {
      if (cookie.length !== COOKIE_BYTES) return false
      const bucket = Math.floor(now / COOKIE_BUCKET_MS)
      // Both checked whatever the first says, so the time taken tells nothing. (A clock before 1970 has no previous.)
      const current = timingSafeEqual(mac(bucket, source, names, nonceR), cookie)
      const previous = timingSafeEqual(mac(Math.max(0, bucket - 1), source, names, nonceR), cookie)
      return current || previous
    },
  }
}

/** A budget of new INITs across all peers: `take` says whether one may be made now, leaving `reserve` untouched. */
export interface InitBudget {
  take(now: number, reserve: number): boolean
}

/** A token bucket: `perSecond` new INITs a second on average, `burst` at once. */
export function initBudget(perSecond: number, burst: number): InitBudget {
  let tokens = burst
  let at = -Infinity
  return {
    take(now, reserve) {
      tokens = Math.min(burst, tokens + ((now - at) / 1000) * perSecond)
      at = now
      if (tokens < 1 + reserve) return false
      tokens -= 1
      return true
    },
  }
}

/** Share of the INIT budget a nonce heard only once may not use: kept for nonces heard again, as a real responder's are. */
const FIRST_HEARING_RESERVE = 10

export { MAX_NAME_BYTES, OAEP, PSS }
/** How far behind the highest counter seen a message may arrive and still open once. */
export const REPLAY_WINDOW = 2048

// DER header of an X25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const MIN_INIT_INTERVAL_MS = 1000
/** A fresh responder nonce heard within this long of another marks a flood: nonces must then be heard twice. */
const FLOOD_WINDOW_MS = 1000
/** Responder nonces remembered as heard once: seconds of a flood (1,600/s was measured), 16 bytes each. */
const MAX_HEARD_ONCE = 4096
const TWO_TO_32 = 2 ** 32

interface Session {
  id: Buffer
  idHex: string
  sendKey: KeyObject
  receiveKey: KeyObject
  sendPrefix: Buffer
  receivePrefix: Buffer
  sealed: number
  establishedAt: number
  window: ReplayWindow
}

interface PendingInit {
  nonceI: Buffer
  nonceR: Buffer
  ephemeralPrivate: KeyObject
  secret: Buffer
  bytes: Buffer
  createdAt: number
}

export class SecureChannel {
  /** True if this side sends INIT: its identity fingerprint sorts lower than the peer's. */
  readonly initiator: boolean
  readonly myName: string
  readonly peerName: string
  /** The peer's key in canonical SPKI PEM form, as checked. */
  readonly peerPublicKeyPem: string

  /** The names as every message we send starts: from me, to the peer. */
  private readonly names: HandshakeNames
  private readonly myFingerprint: Buffer
  private readonly peerFingerprint: Buffer
  private readonly myPrivateKey: KeyObject
  private readonly peerPublicKey: KeyObject
  private readonly peerModulusBytes: number
  private readonly myModulusBytes: number
  private readonly now: () => number
  private readonly rekeyAfterMessages: number
  private readonly rekeyAfterMs: number
  private readonly graceMs: number
  private readonly maxMessagesPerSession: number
  private readonly handshakeTimeoutMs: number
  private readonly initBudget: InitBudget | undefined
  private readonly cookies: RequestCookies

  private current: Session | undefined
  private retired: Array<{ session: Session; dropAt: number }> = []

  // Initiator state.
  private pending: PendingInit | undefined
  private lastInitAt = -Infinity
  /** The responder nonce our last completed handshake used: a late copy of its REQUEST needs no new INIT. */
  private completedNonceR: Buffer | undefined
  /** Responder nonces heard once, oldest first, and when the latest fresh one came (see answerRequestAsInitiator). */
  private readonly heardOnce = new Set<string>()
  private lastFreshNonceAt = -Infinity

  // Responder state.
  private nonceR: Buffer | undefined
  /** The initiator's cookie for the current nonceR, echoed in every REQUEST until an INIT uses the nonce. */
  private cookie: Buffer | undefined
  private answered: { init: Buffer; resp: Buffer } | undefined

  constructor(options: SecureChannelOptions) {
    const { me, peer } = options
    this.myName = me.name
    this.peerName = peer.name
    this.names = {
      from: encodeHandshakeName(me.name, 'my name'),
      to: encodeHandshakeName(peer.name, "the peer's name"),
    }
    if (me.name === peer.name) throw new Error(`SecureChannel: both ends are named "${me.name}"`)

    const checkedPeer = checkPublicKey(peer.publicKeyPem)
    this.peerPublicKeyPem = checkedPeer.publicKeyPem
    this.peerFingerprint = fingerprintBytes(checkedPeer.publicKeyPem)
    this.myFingerprint = fingerprintBytes(me.identity.publicKeyPem)
    const order = Buffer.compare(this.myFingerprint, this.peerFingerprint)
    if (order === 0) throw new Error(`SecureChannel: ${peer.name} has the same identity key as ${me.name}`)
    this.initiator = order < 0

    this.myPrivateKey = createPrivateKey(me.identity.privateKeyPem)
    this.peerPublicKey = createPublicKey(checkedPeer.publicKeyPem)
    this.myModulusBytes = Math.ceil(me.identity.bits / 8)
    this.peerModulusBytes = Math.ceil(checkedPeer.bits / 8)

    this.now = options.now ?? Date.now
    this.maxMessagesPerSession = positiveInteger(options.maxMessagesPerSession, TWO_TO_32, 'maxMessagesPerSession')
    this.rekeyAfterMessages = positiveInteger(options.rekeyAfterMessages, 2 ** 20, 'rekeyAfterMessages')
    this.rekeyAfterMs = positiveInteger(options.rekeyAfterMs, 60 * 60 * 1000, 'rekeyAfterMs')
    this.graceMs = nonNegativeInteger(options.graceMs, 60 * 1000, 'graceMs')
    this.handshakeTimeoutMs = positiveInteger(options.handshakeTimeoutMs, 10 * 1000, 'handshakeTimeoutMs')
    this.initBudget = options.initBudget
    this.cookies = options.cookies ?? requestCookies()
    if (this.maxMessagesPerSession > Number.MAX_SAFE_INTEGER) {
      throw new RangeError('SecureChannel: maxMessagesPerSession must fit a safe integer')
    }
    if (this.rekeyAfterMessages > this.maxMessagesPerSession) {
      throw new RangeError('SecureChannel: rekeyAfterMessages must not exceed maxMessagesPerSession')
    }
  }

  /** A session is in place: seal() works. */
  get established(): boolean {
    return this.current !== undefined
  }

  /**
   * Handshake messages to send now to get (or renew) a session. Call again to retransmit.
   * Responder: REQUEST{nonceR}. Initiator: its pending INIT if there is a recent one, else REQUEST to prompt the responder.
   */
  begin(): Buffer[] {
    if (!this.initiator) {
      this.nonceR ??= randomBytes(NONCE_BYTES)
      return [encodeRequest(this.names, this.nonceR, this.cookie)]
    }
    if (this.pending !== undefined && this.now() - this.pending.createdAt < this.handshakeTimeoutMs) {
      return [this.pending.bytes]
    }
    this.dropPending()
    return [encodeRequest(this.names, undefined)]
  }

  /**
   * Handles one handshake message from this peer; returns the replies to send (to the peer's path, never to `source`).
   * Throws HandshakeRejected. `source` names where the message came from (as "transport address:port"): a cookie the
   * initiator made for one source is not valid from another.
   */
  handleHandshake(body: Buffer, source = ''): Buffer[] {
    const message = parseHandshake(body)
    if (message.from !== this.peerName || message.to !== this.myName) {
      throw new HandshakeRejected(
        `${message.type.toUpperCase()} from "${message.from}" to "${message.to}" reached the channel of ${this.myName} with ${this.peerName}`,
      )
    }
    switch (message.type) {
      case 'request':
        return this.initiator ? this.answerRequestAsInitiator(message, source) : this.answerRequestAsResponder()
      case 'cookie':
        if (this.initiator)
          throw new HandshakeRejected(`COOKIE from ${this.peerName}, but ${this.myName} is the initiator`)
        return this.acceptCookie(message)
      case 'init':
        if (this.initiator)
          throw new HandshakeRejected(`INIT from ${this.peerName}, but ${this.myName} is the initiator`)
        return this.acceptInit(message, body)
      case 'resp':
        if (!this.initiator)
          throw new HandshakeRejected(`RESP from ${this.peerName}, but ${this.myName} is the responder`)
        this.acceptResp(message, body)
        return []
    }
  }

  /** Encrypts one message for the peer; `aad` is authenticated but not sent (the caller sends it itself). */
  seal(plaintext: Buffer, aad?: Buffer): Buffer {
    this.dropExpiredSessions()
    const session = this.current
    if (session === undefined) {
      throw new SealRefused(`no session with ${this.peerName} yet: complete a handshake (begin()) first`)
    }
    if (session.sealed >= this.maxMessagesPerSession) {
      throw new SealRefused(
        `session with ${this.peerName} has sealed its ${this.maxMessagesPerSession} messages: rekey first`,
      )
    }
    const counter = encodeDataCounter(session.sealed)
    const cipher = createCipheriv('aes-256-gcm', session.sendKey, Buffer.concat([session.sendPrefix, counter]), {
      authTagLength: TAG_BYTES,
    })
    cipher.setAAD(dataAad(aad, session.id, counter))
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
    session.sealed += 1
    return Buffer.concat([session.id, counter, ciphertext, cipher.getAuthTag()])
  }

  /** Decrypts a DATA body of the current or a grace-period session. Throws OpenFailed; a failure changes nothing. */
  open(body: Buffer, aad?: Buffer): Buffer {
    this.dropExpiredSessions()
    const idHex = peekSessionId(body)
    const session = this.findSession(idHex)
    if (session === undefined)
      throw new OpenFailed(`DATA for session ${idHex}, which ${this.myName} has no (more) keys for`)
    const counter = readDataCounter(body)
    if (counter === undefined) throw new OpenFailed(`DATA counter out of range in session ${idHex}`)
    const replayProblem = session.window.problemWith(counter)
    if (replayProblem !== undefined)
      throw new OpenFailed(`DATA counter ${counter} in session ${idHex} ${replayProblem}`)
    const counterBytes = body.subarray(SESSION_ID_BYTES, SESSION_ID_BYTES + COUNTER_BYTES)
    const decipher = createDecipheriv(
      'aes-256-gcm',
      session.receiveKey,
      Buffer.concat([session.receivePrefix, counterBytes]),
      { authTagLength: TAG_BYTES },
    )
    decipher.setAAD(dataAad(aad, session.id, counterBytes))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    let plaintext: Buffer
    try {
      plaintext = Buffer.concat([
        decipher.update(body.subarray(SESSION_ID_BYTES + COUNTER_BYTES, body.length - TAG_BYTES)),
        decipher.final(),
      ])
    } catch {
      throw new OpenFailed(
        `DATA in session ${idHex} failed authentication (altered, wrong header, or not from ${this.peerName})`,
      )
    }
    session.window.accept(counter)
    return plaintext
  }

  /** The current session is due for renewal (by messages sealed or by age); false if there is none. */
  needsRekey(): boolean {
    const session = this.current
    if (session === undefined) return false
    return session.sealed >= this.rekeyAfterMessages || this.now() - session.establishedAt >= this.rekeyAfterMs
  }

  /** Session ids this channel can currently open (current first, then grace), hex, so the plugin can route DATA bodies. */
  sessionIds(): string[] {
    this.dropExpiredSessions()
    const ids = this.retired.map((entry) => entry.session.idHex).reverse()
    return this.current === undefined ? ids : [this.current.idHex, ...ids]
  }

  // ── initiator ──

  private answerRequestAsInitiator(request: RequestMessage, source: string): Buffer[] {
    const { nonceR, cookie } = request
    if (nonceR === undefined || cookie === undefined) {
      throw new HandshakeRejected(`REQUEST from ${this.peerName} (the responder) carries no nonce`)
    }
    // Before anything else, and before any RSA work: a REQUEST without the cookie for its nonce, names and source gets
    // the cookie (to the peer's path, no larger than the REQUEST) and nothing more. Forged sources never see it.
    const now = this.now()
    if (!this.cookies.valid(now, source, request.names, nonceR, cookie)) {
      const fresh = this.cookies.make(now, source, request.names, nonceR)
      return [encodeCookie(this.names, nonceR, fresh)]
    }
    if (this.completedNonceR !== undefined && nonceR.equals(this.completedNonceR)) return []
    if (this.pending !== undefined && nonceR.equals(this.pending.nonceR)) return [this.pending.bytes]
    // REQUESTs are unauthenticated: anyone can send them with fresh nonces. One responder has one nonce at a time, so
    // several fresh ones within a second mean a flood; then a nonce is acted on only when heard again. The real
    // responder repeats its nonce until an INIT uses it; made-up nonces cost no RSA work and replace no pending INIT.
    const hex = nonceR.toString('hex')
    const repeated = this.heardOnce.delete(hex)
    if (!repeated) {
      const flooded = now - this.lastFreshNonceAt < FLOOD_WINDOW_MS
      this.lastFreshNonceAt = now
      this.heardOnce.add(hex)
      if (this.heardOnce.size > MAX_HEARD_ONCE) this.heardOnce.delete(this.heardOnce.values().next().value!)
      if (flooded) return []
    }
    // Each new INIT costs an RSA signature: at most one per second per peer, and within the client's total budget
    // (made-up names are free: 100 of them once cost a fifth of a core).
    if (now - this.lastInitAt < MIN_INIT_INTERVAL_MS) return []
    if (this.initBudget && !this.initBudget.take(now, repeated ? 0 : FIRST_HEARING_RESERVE)) return []

    const ephemeral = generateKeyPairSync('x25519')
    const nonceI = randomBytes(NONCE_BYTES)
    const secret = randomBytes(SECRET_BYTES)
    const encryptedSecret = publicEncrypt({ key: this.peerPublicKey, ...OAEP }, secret)
    const bytes = encodeInit(
      this.names,
      { ephemeral: rawX25519(ephemeral.publicKey), nonceI, nonceR, encryptedSecret },
      (signedPart) =>
        sign('sha256', this.transcript(INIT_LABEL, this.myFingerprint, this.peerFingerprint, signedPart), {
          key: this.myPrivateKey,
          ...PSS,
        }),
    )

    this.dropPending()
    this.pending = {
      nonceI,
      nonceR: Buffer.from(nonceR),
      ephemeralPrivate: ephemeral.privateKey,
      secret,
      bytes,
      createdAt: now,
    }
    this.lastInitAt = now
    return [bytes]
  }

  private acceptResp(resp: RespMessage, respBytes: Buffer): void {
    const pending = this.pending
    if (pending === undefined || !timingSafeEqual(resp.nonceI, pending.nonceI)) {
      throw new HandshakeRejected(`RESP from ${this.peerName} answers no INIT we are waiting for (stale or replayed)`)
    }
    if (resp.signature.length !== this.peerModulusBytes) {
      throw new HandshakeRejected(
        `RESP from ${this.peerName}: signature is ${resp.signature.length} bytes, its key makes ${this.peerModulusBytes}`,
      )
    }
    const signed = this.transcript(RESP_LABEL, this.peerFingerprint, this.myFingerprint, pending.bytes, resp.signedPart)
    if (!verifyPss(signed, this.peerPublicKey, resp.signature)) {
      throw new HandshakeRejected(
        `RESP claiming to be from ${this.peerName}: signature does not verify with ${this.peerName}'s key`,
      )
    }
    const shared = x25519(pending.ephemeralPrivate, resp.ephemeral)
    const session = this.deriveSession(shared, pending.secret, pending.bytes, respBytes)

    this.completedNonceR = pending.nonceR
    this.dropPending()
    this.install(session)
  }

  private dropPending(): void {
    // Wipe what we can; the X25519 private key lives in OpenSSL and goes with its last reference.
    this.pending?.secret.fill(0)
    this.pending = undefined
  }

  // ── responder ──

  private answerRequestAsResponder(): Buffer[] {
    // No RSA work here: a REQUEST is unauthenticated, so it must stay cheap to answer.
    this.nonceR ??= randomBytes(NONCE_BYTES)
    return [encodeRequest(this.names, this.nonceR, this.cookie)]
  }

  private acceptCookie(message: CookieMessage): Buffer[] {
    if (this.nonceR === undefined || !timingSafeEqual(message.nonceR, this.nonceR)) {
      throw new HandshakeRejected(`COOKIE from ${this.peerName} for a nonce we are not offering (stale or forged)`)
    }
    // The same cookie again (one per REQUEST we sent): the retransmissions carry it already.
    if (this.cookie !== undefined && this.cookie.equals(message.cookie)) return []
    this.cookie = Buffer.from(message.cookie)
    return [encodeRequest(this.names, this.nonceR, this.cookie)]
  }

  private acceptInit(init: InitMessage, initBytes: Buffer): Buffer[] {
    if (this.answered !== undefined && initBytes.equals(this.answered.init)) return [this.answered.resp]
    if (this.nonceR === undefined || !timingSafeEqual(init.nonceR, this.nonceR)) {
      throw new HandshakeRejected(`INIT from ${this.peerName} echoes no nonce we offered (stale or replayed)`)
    }
    if (init.signature.length !== this.peerModulusBytes || init.encryptedSecret.length !== this.myModulusBytes) {
      throw new HandshakeRejected(`INIT from ${this.peerName}: RSA fields do not match the sizes of the two keys`)
    }
    // Verify before decrypting, so nobody without the initiator's key gets to probe our OAEP decryption.
    const signed = this.transcript(INIT_LABEL, this.peerFingerprint, this.myFingerprint, init.signedPart)
    if (!verifyPss(signed, this.peerPublicKey, init.signature)) {
      throw new HandshakeRejected(
        `INIT claiming to be from ${this.peerName}: signature does not verify with ${this.peerName}'s key`,
      )
    }
    let secret: Buffer
    try {
      secret = privateDecrypt({ key: this.myPrivateKey, ...OAEP }, init.encryptedSecret)
    } catch {
      throw new HandshakeRejected(`INIT from ${this.peerName}: the encrypted secret does not decrypt`)
    }
    try {
      if (secret.length !== SECRET_BYTES) {
        throw new HandshakeRejected(
          `INIT from ${this.peerName}: the encrypted secret is ${secret.length} bytes, not ${SECRET_BYTES}`,
        )
      }
      const ephemeral = generateKeyPairSync('x25519')
      const shared = x25519(ephemeral.privateKey, init.ephemeral)
      const respBytes = encodeResp(
        this.names,
        { ephemeral: rawX25519(ephemeral.publicKey), nonceI: init.nonceI },
        (signedPart) =>
          sign('sha256', this.transcript(RESP_LABEL, this.myFingerprint, this.peerFingerprint, initBytes, signedPart), {
            key: this.myPrivateKey,
            ...PSS,
          }),
      )
      const session = this.deriveSession(shared, secret, initBytes, respBytes)

      this.nonceR = undefined
      this.cookie = undefined
      this.answered = { init: Buffer.from(initBytes), resp: respBytes }
      this.install(session)
      return [respBytes]
    } finally {
      secret.fill(0)
    }
  }

  // ── both ──

  /** Domain-separated bytes a handshake signature covers: label, signer's and verifier's fingerprints, then the messages. */
  private transcript(label: Buffer, signerFingerprint: Buffer, otherFingerprint: Buffer, ...parts: Buffer[]): Buffer {
    return Buffer.concat([label, signerFingerprint, otherFingerprint, ...parts])
  }

  private deriveSession(shared: Buffer, secret: Buffer, initBytes: Buffer, respBytes: Buffer): Session {
    const [initiatorFingerprint, responderFingerprint] = this.initiator
      ? [this.myFingerprint, this.peerFingerprint]
      : [this.peerFingerprint, this.myFingerprint]
    const ikm = Buffer.concat([shared, secret])
    const salt = createHash('sha256').update(initBytes).update(respBytes).digest()
    const info = Buffer.concat([KEYS_LABEL, initiatorFingerprint, responderFingerprint])
    const okm = Buffer.from(hkdfSync('sha256', ikm, salt, info, 2 * KEY_BYTES + 2 * PREFIX_BYTES + SESSION_ID_BYTES))
    const initiatorKey = createSecretKey(okm.subarray(0, KEY_BYTES))
    const responderKey = createSecretKey(okm.subarray(KEY_BYTES, 2 * KEY_BYTES))
    const initiatorPrefix = Buffer.from(okm.subarray(2 * KEY_BYTES, 2 * KEY_BYTES + PREFIX_BYTES))
    const responderPrefix = Buffer.from(okm.subarray(2 * KEY_BYTES + PREFIX_BYTES, 2 * KEY_BYTES + 2 * PREFIX_BYTES))
    const id = Buffer.from(okm.subarray(2 * KEY_BYTES + 2 * PREFIX_BYTES))
    okm.fill(0)
    ikm.fill(0)
    shared.fill(0)
    return {
      id,
      idHex: id.toString('hex'),
      sendKey: this.initiator ? initiatorKey : responderKey,
      receiveKey: this.initiator ? responderKey : initiatorKey,
      sendPrefix: this.initiator ? initiatorPrefix : responderPrefix,
      receivePrefix: this.initiator ? responderPrefix : initiatorPrefix,
      sealed: 0,
      establishedAt: this.now(),
      window: new ReplayWindow(),
    }
  }

  private install(session: Session): void {
    this.dropExpiredSessions()
    if (this.current !== undefined) this.retired.push({ session: this.current, dropAt: this.now() + this.graceMs })
    this.current = session
  }

  private dropExpiredSessions(): void {
    const now = this.now()
    if (this.retired.some((entry) => entry.dropAt <= now)) {
      this.retired = this.retired.filter((entry) => entry.dropAt > now)
    }
  }

  private findSession(idHex: string): Session | undefined {
    if (this.current?.idHex === idHex) return this.current
    return this.retired.find((entry) => entry.session.idHex === idHex)?.session
  }
}

/** Sliding window over received counters: each counter opens once, and only within REPLAY_WINDOW of the highest. */
class ReplayWindow {
  private highest = -1
  private readonly seen = new Uint32Array(REPLAY_WINDOW / 32)

  /** Why this counter may not be opened, or undefined if it may. */
  problemWith(counter: number): string | undefined {
    if (counter > this.highest) return undefined
    if (this.highest - counter >= REPLAY_WINDOW) return `is too old (more than ${REPLAY_WINDOW} behind the newest)`
    return this.has(counter) ? 'was already opened' : undefined
  }

  /** Call only after the message authenticated, so forgeries cannot move the window. */
  accept(counter: number): void {
    if (counter > this.highest) {
      if (counter - this.highest >= REPLAY_WINDOW) {
        this.seen.fill(0)
      } else {
        for (let skipped = this.highest + 1; skipped < counter; skipped++) this.clear(skipped)
      }
      this.highest = counter
    }
    const slot = counter % REPLAY_WINDOW
    this.seen[slot >>> 5] |= 1 << (slot & 31)
  }

  private has(counter: number): boolean {
    const slot = counter % REPLAY_WINDOW
    return (this.seen[slot >>> 5] & (1 << (slot & 31))) !== 0
  }

  private clear(counter: number): void {
    const slot = counter % REPLAY_WINDOW
    this.seen[slot >>> 5] &= ~(1 << (slot & 31))
  }
}

function verifyPss(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify('sha256', data, { key, ...PSS }, signature)
  } catch {
    return false
  }
}

function x25519(privateKey: KeyObject, peerRaw: Buffer): Buffer {
  try {
    const publicKey = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, peerRaw]),
      format: 'der',
      type: 'spki',
    })
    // OpenSSL refuses an all-zero result, which is what low-order points give.
    return diffieHellman({ privateKey, publicKey })
  } catch {
    throw new HandshakeRejected('ephemeral X25519 key is unusable (low-order point)')
  }
}

function rawX25519(publicKey: KeyObject): Buffer {
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length)
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2)
  bytes.writeUInt16BE(value)
  return bytes
}

function positiveInteger(value: number | undefined, fallback: number, option: string): number {
  const result = value ?? fallback
  if (!Number.isInteger(result) || result <= 0)
    throw new RangeError(`SecureChannel: ${option} must be a positive integer, got ${value}`)
  return result
}

function nonNegativeInteger(value: number | undefined, fallback: number, option: string): number {
  const result = value ?? fallback
  if (!Number.isInteger(result) || result < 0)
    throw new RangeError(`SecureChannel: ${option} must be a non-negative integer, got ${value}`)
  return result
}
