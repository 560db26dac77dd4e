// The rendezvous server: names and keys in, introductions out. It never sees message content.
import * as dgram from 'node:dgram'
import { randomBytes, type KeyObject } from 'node:crypto'
import { isIPv6 } from 'node:net'
import { createLogger } from '../core/log'
import type { Endpoint, Logger } from '../core/types'
import { Admission, type Admitted } from './admission'
import { RateLimiter } from './guard'
import {
  decodeFrame,
  decodeJson,
  decodeRelay,
  encodeJson,
  encodeRelay,
  FrameKind,
  formatEndpoint,
  NAMES_PER_REPLY,
  parseClientMessage,
  sameEndpoint,
  serverFingerprint,
  type ChannelEnd,
  type ClientMessage,
  type ServerMessage,
  CLOSING,
  EVICTED,
  foldName,
  healthReply,
  parseHealthCheck,
  type ClosingNotice,
  type HealthReply,
} from '../protocol'
import { loadServerKey } from './identity'
import { keyId, NameBook, type ClaimResult } from './names'
import type { Broadcast, Forward, SharedRegistration, SharedState } from './shared'

export { defaultServerDataDir } from './identity'
import { DEFAULT_QUOTAS, Registry, type Quotas, type Registration } from './registry'
import { Watches } from './watches'
import { DEFAULT_RELAY_LIMITS, RelayPolicy, type RelayLimits } from './relay'

export interface ServerOptions {
  host?: string
  port?: number
  /** A registration lives this long after its last keepalive. */
  ttlMs?: number
  /** Registrations online at once; past it the one idle longest makes room. */
  maxRegistrations?: number
  /** Registrations per source address and per /24 (IPv4) or /48 (IPv6) prefix. */
  quotas?: Quotas
  /**
   * Second UDP port that answers only `mapping` requests, so a client can tell whether its NAT maps per destination
   * (RFC 5780 style). Default: `port + 1`, or any free port when that is taken or `port` is 0; `false` turns it off.
   */
  altPort?: number | false
  /** Where the server keeps its long-term signing key (`server-key.pem`, made on first start). Without it (and without
   *  `key`), a new key each start: clients that pinned the old one then refuse to register. */
  dataDir?: string
  /** The long-term Ed25519 private key itself, instead of `dataDir` (tests that restart a server). */
  key?: KeyObject
  /** How long a name stays bound to its key while its owner is away (default 90 days); kept in `dataDir`. */
  nameReleaseAfterMs?: number
  /** At most this many names bound at once (default 100,000); past it, only names released by absence make room. */
  maxNames?: number
  /** Forward RELAY frames between peers that both asked for it; off unless enabled. */
  relay?: boolean
  /** Per-peer rate limits of the relay. */
  relayLimits?: RelayLimits
  /** Sees every datagram the server receives, before anything else: for traffic capture in tests and for monitoring. */
  observe?: (bytes: Buffer, from: Endpoint) => void
  /** Datagrams per second (and burst) accepted from one source address, and registration steps, which cost RSA work. */
  limits?: { perSecond: number; burst: number; registrationsPerSecond: number; registrationBurst: number }
  /** Names a client waits for: kept `ttlMs`, at most `perClient` per client and `total` in all (default: an hour, 32, 100,000). */
  watches?: { ttlMs: number; perClient: number; total: number }
  /**
   * `redis://HOST:PORT`: share registrations, names and introductions with the other instances on that Redis (see
   * server/shared.ts); without it, this instance is alone (the in-memory registry).
   */
  redis?: string
  /** How often an instance heartbeats in Redis; one silent for three beats is gone, its clients offline (default 1000). */
  heartbeatMs?: number
  /** Registrations waiting for their proof at once, how long one waits (ms), how long a cookie is good for (ms). */
  admission?: { maxPending: number; pendingMs: number; cookieMs: number }
  /** Names and addresses go only in the fields `name`, `peer`, `from`, `to`, `endpoint` (server/logger.ts can redact them). */
  logger?: Logger
}

export interface ServerStats {
  received: number
  /** Not a udsu frame, oversized, not JSON, or not a message we accept. */
  malformed: number
  /** Requests from endpoints that are not registered. */
  unregistered: number
  /** CHANNEL frames from a registered endpoint that failed to open (forged, altered or replayed): dropped, never acted on. */
  forged: number
  registrations: number
  introductions: number
  /** RELAY frames forwarded, and refused (no consent, over rate, malformed or relay off). */
  relayed: number
  /** Bytes of the RELAY frames forwarded (as sent). */
  relayedBytes: number
  relayRefused: number
  /** `mapping` requests answered on the second port. */
  mappings: number
  /** Datagrams dropped by the per-source rate limits. */
  limited: number
  /** Replies not sent because they would have been larger than the unverified request (no amplification). */
  unsent: number
}

/**
 * The main socket's receive buffer. The default (~208 KiB, ~200 small datagrams) overflowed whenever the server's
 * process waited for a CPU: bench:server lost 124,000 datagrams, a third of the keepalives, at 33,000 clients on a busy
 * machine. Linux caps it at net.core.rmem_max (and doubles what it grants).
 */
const RECV_BUFFER_BYTES = 8 * 1024 * 1024

/** Asks for `bytes` of receive buffer, halving where the system refuses; never below its default. As the udp plugin does. */
function growRecvBuffer(socket: dgram.Socket, bytes: number): void {
  const before = socket.getRecvBufferSize()
  for (let ask = bytes; ask * 2 > before; ask = Math.floor(ask / 2)) {
    try {
      socket.setRecvBufferSize(ask)
      return
    } catch {
      // Above what the system allows this process: try half.
    }
  }
}

export const DEFAULT_ADMISSION = { maxPending: 4096, pendingMs: 10_000, cookieMs: 60_000 }

/** A client to introduce or to relay to: one of ours (with its channel), or one at another instance (`at`). */
type Peer = Registration | SharedRegistration
const isRemote = (peer: Peer): peer is SharedRegistration => 'at' in peer

export const DEFAULT_LIMITS = { perSecond: 100, burst: 200, registrationsPerSecond: 5, registrationBurst: 10 }

export class RendezvousServer {
  readonly stats: ServerStats = {
    received: 0,
    malformed: 0,
    unregistered: 0,
    forged: 0,
    registrations: 0,
    introductions: 0,
    relayed: 0,
    relayedBytes: 0,
    relayRefused: 0,
    mappings: 0,
    limited: 0,
    unsent: 0,
  }
  private readonly socket: dgram.Socket
  private readonly altSocket?: dgram.Socket
  /** An IPv6 host (`::`) listens on both families: IPv4 clients arrive as `::ffff:a.b.c.d`, and are answered there. */
  private readonly dualStack: boolean
  private readonly relayPolicy?: RelayPolicy
  private readonly registry: Registry
  /** Who asked for an offline name, or was introduced to a name: introduced to it again as soon as it registers. An hour, 32 names per asker. */
  private readonly watches: Watches
  private readonly admission: Admission
  private readonly serverKey: KeyObject
  /** Which key owns which name, online or not (on disk in the data dir). */
  private readonly names: NameBook
  private readonly limiter: RateLimiter
  private readonly registrationLimiter: RateLimiter
  private readonly logger: Logger
  private readonly ttlMs: number
  private sweeper?: NodeJS.Timeout
  /** The other instances' state, with `--redis`. */
  private readonly shared?: SharedState
  /** Clients of other instances lately relayed to, so a relayed frame costs no Redis round trip: name → until when. */
  private readonly remoteRelay = new Map<string, { peer: SharedRegistration; until: number }>()

  constructor(private readonly options: ServerOptions = {}) {
    this.ttlMs = options.ttlMs ?? 45_000
    this.serverKey = options.key ?? loadServerKey(options.dataDir)
    this.admission = new Admission(this.serverKey, options.admission ?? DEFAULT_ADMISSION)
    this.names = NameBook.in(options.dataDir, {
      releaseAfterMs: options.nameReleaseAfterMs,
      maxNames: options.maxNames,
    })
    this.registry = new Registry(this.ttlMs, options.maxRegistrations ?? 10_000, options.quotas ?? DEFAULT_QUOTAS)
    const limits = options.limits ?? DEFAULT_LIMITS
    this.limiter = new RateLimiter(limits.perSecond, limits.burst)
    this.registrationLimiter = new RateLimiter(limits.registrationsPerSecond, limits.registrationBurst)
    const watches = options.watches ?? { ttlMs: 60 * 60_000, perClient: 32, total: 100_000 }
    this.watches = new Watches(watches.ttlMs, watches.perClient, watches.total)
    this.logger = options.logger ?? createLogger('info', undefined, 'server')
    this.dualStack = isIPv6(options.host ?? '')
    const family = this.dualStack ? 'udp6' : 'udp4'
    this.socket = dgram.createSocket(family)
    this.socket.on('message', (bytes, rinfo) =>
      this.handle(bytes, { address: unmapped(rinfo.address), port: rinfo.port }),
    )
    this.socket.on('error', (error) => this.logger.error('socket error', { reason: error.message }))
    if (options.altPort !== false) {
      this.altSocket = dgram.createSocket(family)
      this.altSocket.on('message', (bytes, rinfo) =>
        this.handleAlt(bytes, { address: unmapped(rinfo.address), port: rinfo.port }),
      )
      this.altSocket.on('error', (error) => this.logger.error('second socket error', { reason: error.message }))
    }
    if (options.relay) this.relayPolicy = new RelayPolicy(options.relayLimits ?? DEFAULT_RELAY_LIMITS)
    if (options.redis) {
      // Loaded only here: the Redis client costs a server that runs alone ~13 MB of memory for nothing.
      const { SharedState } = require('./shared') as typeof import('./shared')
      this.shared = new SharedState({
        url: options.redis,
        ttlMs: this.ttlMs,
        releaseAfterMs: this.names.releaseAfter,
        heartbeatMs: options.heartbeatMs ?? 1000,
        logger: this.logger,
        republish: () => ({ registrations: this.registry.all(Date.now()).map(shareable), names: this.names.entries() }),
        onForward: (forward) => this.forwarded(forward, Date.now()),
        onBroadcast: (broadcast) => this.broadcasted(broadcast, Date.now()),
      })
    }
  }

  /** Binds the socket; resolves with the endpoint it listens on. */
  async listen(): Promise<Endpoint> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject)
      this.socket.bind(this.options.port ?? 7777, this.options.host ?? '0.0.0.0', () => {
        this.socket.off('error', reject)
        resolve()
      })
    })
    growRecvBuffer(this.socket, RECV_BUFFER_BYTES)
    if (this.altSocket) await this.listenAlt(this.altSocket)
    await this.shared?.start()
    this.sweeper = setInterval(
      () => {
        const now = Date.now()
        // Those online were here: their names' absence counts from now on.
        const live = this.registry.all(now)
        for (const r of live) this.names.seen(r.name, r.key, now)
        // In Redis too; a client another instance holds now (it moved there) is no longer ours.
        void this.shared?.refresh(live.map(shareable), now).then((moved) => {
          for (const name of moved) this.registry.remove(name)
        })
        for (const name of this.registry.expire(now)) {
          this.shared?.unpublish(name)
          this.logger.info('expired', { name })
        }
        for (const name of this.names.expire(now)) this.logger.info("released after its owner's long absence", { name })
        this.saveNames()
        this.watches.expire(now)
        this.relayPolicy?.prune((r) => this.registry.get(r.name, now) === r)
      },
      Math.max(1000, this.ttlMs / 3),
    )
    this.sweeper.unref()
    this.logger.info(`server key ${this.fingerprint}`)
    return this.address()
  }

  private async listenAlt(socket: dgram.Socket): Promise<void> {
    const main = this.address()
    const configured = this.options.altPort === false ? undefined : this.options.altPort
    const wanted = configured ?? (main.port > 0 && main.port < 65535 ? main.port + 1 : 0)
    const bind = (port: number) =>
      new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(port, this.options.host ?? '0.0.0.0', () => {
          socket.off('error', reject)
          resolve()
        })
      })
    try {
      await bind(wanted)
    } catch (error) {
      // The default port+1 is a convenience; an explicitly configured port that is taken is an error.
      if (configured !== undefined || wanted === 0) throw error
      this.logger.warn(`second port ${wanted} is taken; using any free port`, { reason: (error as Error).message })
      await bind(0)
    }
  }

  /** The second port (NAT detection), if it is on. */
  altAddress(): Endpoint | undefined {
    if (!this.altSocket) return undefined
    const { address, port } = this.altSocket.address()
    return { address, port }
  }

  address(): Endpoint {
    const { address, port } = this.socket.address()
    return { address, port }
  }

  /** The server key's fingerprint (`SHA256:…`), which clients pin or are given as `HOST:PORT#fingerprint`. */
  get fingerprint(): string {
    return serverFingerprint(this.serverKey)
  }

  get online(): number {
    return this.registry.size
  }

  /** With `--redis`: whether Redis answers now, and what crossed it; undefined when this instance is alone. */
  get redis(): { up: boolean; forwarded: number; forwardDropped: number } | undefined {
    return this.shared && { up: this.shared.available, ...this.shared.stats }
  }

  /**
   * Tells every registered client that this server is stopping (`closing`), so it can register elsewhere or again when
   * the server is back, then closes. Resolves once the notices have left the socket.
   */
  async drain(): Promise<number> {
    const now = Date.now()
    const clients = this.registry.names(now).flatMap((name) => this.registry.get(name, now) ?? [])
    this.logger.info('draining: telling the clients', { clients: clients.length })
    await Promise.all(clients.map((r) => new Promise<void>((resolve) => this.send(r, CLOSING, resolve))))
    await this.close()
    return clients.length
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper)
    const live = this.registry.all(Date.now())
    for (const r of live) this.names.seen(r.name, r.key, Date.now())
    this.saveNames()
    // Its clients are gone from Redis at once, so those moving to another instance are found there, not here.
    await this.shared?.close(live.map((r) => r.name))
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
    if (this.altSocket) await new Promise<void>((resolve) => this.altSocket!.close(() => resolve()))
  }

  private saveNames(): void {
    try {
      this.names.save()
    } catch (error) {
      this.logger.error(`cannot save the names: ${(error as Error).message}`)
    }
  }

  private handle(bytes: Buffer, from: Endpoint): void {
    this.stats.received++
    this.options.observe?.(bytes, from)
    // Per address, not per endpoint: a flooder cannot escape by changing ports.
    if (!this.limiter.allow(from.address)) {
      this.stats.limited++
      return
    }
    const frame = decodeFrame(bytes)
    if (frame?.kind === FrameKind.Channel) return this.openChannel(frame.body, from, Date.now(), bytes.length)
    if (frame?.kind === FrameKind.Relay) return void this.stats.relayRefused++ // only inside the channel
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const health = json && parseHealthCheck(json)
    if (health)
      return this.replyClear(
        from,
        { ...healthReply(health), ...(this.shared ? { redis: this.shared.available ? 'up' : 'down' } : {}) },
        bytes.length,
      )
    const message = json && parseClientMessage(json)
    if (!message) {
      this.stats.malformed++
      this.logger.debug('dropped a malformed datagram', { from: formatEndpoint(from), bytes: bytes.length })
      return
    }
    if (message.t === 'hello' || message.t === 'register') return this.admit(message, from, Date.now(), bytes.length)
    if (message.t === 'prove') {
      // The proof carries the LAN endpoints: only sealed (see openChannel), so a client never learns to send it in clear.
      this.stats.unregistered++
      return this.replyClear(
        from,
        { t: 'error', rid: message.rid, code: 'bad_request', message: 'prove only sealed under the channel' },
        bytes.length,
      )
    }
    // Anything else in clear is unauthenticated: never acted on, whoever's address it carries.
    this.stats.unregistered++
    if (message.t !== 'bye' && message.t !== 'mapping')
      this.replyClear(
        from,
        { t: 'error', rid: message.rid, code: 'not_registered', message: 'register first' },
        bytes.length,
      )
  }

  /**
   * A CHANNEL frame: opened with the keys of the registration waiting at its source endpoint (its sealed `prove`), else
   * with those of the registration there. One that fails (forged, altered, replayed) is dropped and counted and
   * refreshes nothing; from an endpoint with neither it gets a `not_registered` no larger than itself, so a client the
   * server forgot registers again.
   */
  private openChannel(body: Buffer, from: Endpoint, now: number, size: number): void {
    const me = this.registry.at(from, now)
    const waiting = this.admission.channelAt(from)
    if (!me?.channel && !waiting) {
      this.stats.unregistered++
      return this.replyClear(from, { t: 'error', code: 'not_registered', message: 'register first' }, size)
    }
    // Once proven, the waiting channel is the registration's: opened once, as the registration's (a resent proof too).
    const fresh = waiting && waiting !== me?.channel ? waiting.open(body) : undefined
    const inner = fresh ?? me?.channel?.open(body)
    if (!inner) return void this.stats.forged++
    const json = inner.kind === FrameKind.Server ? decodeJson(inner.body) : undefined
    const message = json && parseClientMessage(json)
    if (message?.t === 'prove') return this.prove(message, from, now)
    if (!me) {
      // Sealed under the keys of a registration that was proven but is gone (bye, eviction): as if it had never been.
      this.stats.unregistered++
      return this.replyClear(from, { t: 'error', code: 'not_registered', message: 'register first' }, size)
    }
    if (fresh) return void this.stats.malformed++ // under a registration's keys before it is proven: only its proof
    this.registry.touch(from, now)
    if (inner.kind === FrameKind.Relay) return this.relay(inner.body, me, now)
    if (!message || message.t === 'hello' || message.t === 'register') return void this.stats.malformed++
    this.dispatch(message, me, now)
  }

  /**
   * The second port answers `mapping` only, statelessly, and never with more bytes than the request had (clients pad
   * it), so a spoofed source gains nothing from it.
   */
  private handleAlt(bytes: Buffer, from: Endpoint): void {
    const frame = decodeFrame(bytes)
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const message = json && parseClientMessage(json)
    if (message?.t !== 'mapping') return void this.stats.malformed++
    const reply = encodeJson(FrameKind.Server, { t: 'mapped', rid: message.rid, public: from })
    if (reply.length > bytes.length) return void this.stats.malformed++
    this.stats.mappings++
    this.transmit(from, reply, this.altSocket!)
  }

  /** Forwards one RELAY frame if both peers asked for it and the sender is within its budget; drops it otherwise. */
  private relay(body: Buffer, sender: Registration, now: number): void {
    const parsed = decodeRelay(body)
    if (!this.relayPolicy || !parsed) return void this.stats.relayRefused++
    const recipient = this.registry.get(parsed.name, now)
    if (!recipient && this.shared) return this.relayAcross(parsed.name, parsed.frame, sender, now)
    if (
      !recipient ||
      !this.relayPolicy.allowed(sender, recipient) ||
      !this.relayPolicy.spend(sender, body.length, now)
    ) {
      this.stats.relayRefused++
      return
    }
    this.deliverRelayed(recipient, sender.name, parsed.frame)
  }

  /** Seals a relayed frame for one of our clients, as coming from `senderName`. */
  private deliverRelayed(recipient: Registration, senderName: string, frame: Buffer): void {
    let out: Buffer
    try {
      out = encodeRelay(senderName, frame)
    } catch {
      // The sender's name is longer than the recipient's and the frame no longer fits a datagram.
      this.stats.relayRefused++
      return
    }
    this.stats.relayed++
    this.stats.relayedBytes += out.length
    this.sendSealed(recipient, out)
  }

  /**
   * A RELAY frame for a client of another instance: this side checks the sender's consent and budget, the recipient's
   * instance its consent, and seals it there. Where the recipient is, is looked up in Redis once every few seconds.
   */
  private relayAcross(name: string, frame: Buffer, sender: Registration, now: number): void {
    if (!this.relayPolicy?.hasAsked(sender, name) || !this.relayPolicy.spend(sender, frame.length, now))
      return void this.stats.relayRefused++
    const forward = (peer: SharedRegistration) =>
      this.shared!.forward(peer.at, {
        t: 'frame',
        to: peer.name,
        key: keyId(peer.key),
        from: sender.name,
        frame: frame.toString('base64'),
      })
    const known = this.remoteRelay.get(name)
    if (known && known.until > now) return void forward(known.peer)
    void this.shared!.lookup(name).then((peer) => {
      if (!peer) return void this.stats.relayRefused++
      if (this.remoteRelay.size >= 10_000) this.remoteRelay.clear() // a cache, bounded: only costs a lookup
      this.remoteRelay.set(name, { peer, until: Date.now() + 5_000 })
      forward(peer)
    })
  }

  private askRelay(message: Extract<ClientMessage, { t: 'relay' }>, me: Registration, now: number): void {
    if (!this.relayPolicy)
      return this.send(me, {
        t: 'error',
        rid: message.rid,
        code: 'relay_disabled',
        message: 'this server does not relay',
      })
    const unknown = () =>
      this.send(me, { t: 'error', rid: message.rid, code: 'unknown_peer', message: `${message.to} is not online` })
    void this.find(message.to, now).then((peer) => {
      if (!peer || peer.name === me.name) return unknown()
      if (isRemote(peer)) {
        // Its instance knows whether it asked too, and answers us (a `send` of our `relay` reply).
        this.relayPolicy!.note(me, peer.name)
        this.remoteRelay.delete(peer.name)
        this.shared!.forward(peer.at, {
          t: 'ask-relay',
          to: peer.name,
          key: keyId(peer.key),
          from: me.name,
          fromKey: keyId(me.key),
          fromAt: this.shared!.instanceId,
          rid: message.rid,
        })
        return
      }
      const ready = this.relayPolicy!.ask(me, peer)
      this.send(me, { t: 'relay', rid: message.rid, peer: peer.name, ready })
      // The peer hears either that we asked (so it can consent too) or that the relay is now open both ways.
      this.send(peer, { t: 'relay', peer: me.name, ready })
      if (ready) this.logger.info('relaying', { name: me.name, peer: peer.name })
    })
  }

  /** One of ours by name, or (with Redis) a client of another live instance; undefined if offline. */
  private async find(name: string, now: number): Promise<Peer | undefined> {
    return this.registry.get(name, now) ?? (await this.shared?.lookup(name))
  }

  /** An authenticated request from a registration. */
  private dispatch(
    message: Exclude<ClientMessage, { t: 'hello' | 'register' | 'prove' }>,
    me: Registration,
    now: number,
  ): void {
    const from = me.endpoint
    switch (message.t) {
      case 'ping':
        return this.send(me, { t: 'pong', rid: message.rid, public: from })
      case 'release':
        this.names.release(me.name, me.key)
        this.shared?.release(me.name, me.key)
        this.saveNames()
        this.logger.info('released its name', { name: me.name })
        return this.send(me, { t: 'released', rid: message.rid, name: me.name })
      case 'bye':
        this.names.seen(me.name, me.key, now)
        this.shared?.seen(me.name, me.key, now)
        this.registry.remove(me.name)
        this.shared?.unpublish(me.name)
        this.shared?.broadcast({ t: 'left', name: me.name, at: this.shared.instanceId })
        this.tellLeft(me.name, now)
        return this.logger.info('left', { name: me.name })
      case 'list': {
        const options = { query: message.query, after: message.after, size: NAMES_PER_REPLY, without: me.name }
        if (!this.shared?.available) {
          const page = this.registry.page(now, options)
          return this.send(me, { t: 'peers', rid: message.rid, peers: page.names, more: page.more })
        }
        const query = message.query ? foldName(message.query) : ''
        void this.shared
          .page(message.after, NAMES_PER_REPLY, (name) => name !== me.name && foldName(name).includes(query))
          .then((page) => {
            const shown = page ?? this.registry.page(Date.now(), options)
            this.send(me, { t: 'peers', rid: message.rid, peers: shown.names, more: shown.more })
          })
        return
      }
      case 'connect': {
        void this.find(message.to, now).then((peer) => {
          const at = Date.now()
          if (!peer || peer.name === me.name) {
            if (message.to !== me.name) this.watches.add(me.name, message.to, at)
            return this.send(me, {
              t: 'error',
              rid: message.rid,
              code: 'unknown_peer',
              message: `${message.to} is not online`,
            })
          }
          this.introduce(me, peer, at, message.rid)
        })
        return
      }
      case 'relay':
        return this.askRelay(message, me, now)
      case 'mapping':
        return // answered on the second port only
    }
  }

  /** Those relayed with `name` hear that it left: its own bye goes only down direct paths. */
  private tellLeft(name: string, now: number): void {
    for (const asker of this.relayPolicy?.askers(name) ?? []) {
      if (this.registry.get(asker.name, now) === asker) this.send(asker, { t: 'left', peer: name })
    }
  }

  /**
   * Introduces one of our clients to a peer, ours or another instance's: both get the same token, which their punches
   * must carry, so a stranger cannot steer the path. A peer at another instance gets its intro from there, sealed in its
   * own channel and sent from the address it registered with.
   */
  private introduce(asker: Registration, peer: Peer, now: number, rid?: string): void {
    const token = randomBytes(16).toString('hex')
    const intro = (r: Peer) => ({
      name: r.name,
      key: r.key,
      public: r.endpoint,
      local: r.local,
      nat: r.nat ?? 'unknown',
      ...(r.instance ? { instance: r.instance } : {}),
    })
    this.stats.introductions++
    // Each now waits for the other: if either comes back (a restart, a new port, a new key), both meet again at once.
    this.watches.add(asker.name, peer.name, now)
    if (isRemote(peer)) {
      this.shared!.forward(peer.at, {
        t: 'send',
        to: peer.name,
        key: keyId(peer.key),
        message: { t: 'intro', peer: intro(asker), token },
        watch: asker.name,
      })
    } else {
      this.watches.add(peer.name, asker.name, now)
      this.send(peer, { t: 'intro', peer: intro(asker), token })
    }
    this.send(asker, { t: 'intro', ...(rid ? { rid } : {}), peer: intro(peer), token })
  }

  /** A message from another instance for one of our clients: acted on only if the client is still ours, under the same key. */
  private forwarded(forward: Forward, now: number): void {
    const to = this.registry.get(forward.to, now)
    if (!to || keyId(to.key) !== forward.key) return
    switch (forward.t) {
      case 'send':
        if (forward.watch) this.watches.add(to.name, forward.watch, now)
        return this.send(to, forward.message)
      case 'ask-relay': {
        if (!this.relayPolicy) return
        const ready = this.relayPolicy.hasAsked(to, forward.from)
        this.remoteRelay.delete(forward.from)
        this.send(to, { t: 'relay', peer: forward.from, ready })
        this.shared?.forward(forward.fromAt, {
          t: 'send',
          to: forward.from,
          key: forward.fromKey,
          message: { t: 'relay', ...(forward.rid ? { rid: forward.rid } : {}), peer: to.name, ready },
        })
        if (ready) this.logger.info('relaying', { name: forward.from, peer: to.name })
        return
      }
      case 'frame':
        if (!this.relayPolicy?.hasAsked(to, forward.from)) return void this.stats.relayRefused++
        return this.deliverRelayed(to, forward.from, Buffer.from(forward.frame, 'base64'))
    }
  }

  /** News from another instance: a client registered there (ours no longer, and those waiting for it meet it), or left. */
  private broadcasted(broadcast: Broadcast, now: number): void {
    if (broadcast.t === 'left') return this.tellLeft(broadcast.name, now)
    const peer = broadcast.registration
    this.remoteRelay.delete(peer.name)
    if (this.registry.get(peer.name, now)) {
      // The client registered at another instance since (it moved): that one holds its NAT mapping now.
      this.registry.remove(peer.name)
      this.logger.info('moved to another instance', { name: peer.name })
    }
    for (const watcher of this.watches.take(peer.name, now)) {
      const asker = this.registry.get(watcher, now)
      if (asker) this.introduce(asker, peer, now)
    }
  }

  /** hello → cookie → register → challenge → prove (sealed) → registered. Nothing is stored, and no RSA work done, before the cookie checks out. */
  private admit(
    message: Extract<ClientMessage, { t: 'hello' | 'register' }>,
    from: Endpoint,
    now: number,
    size: number,
  ): void {
    if (message.t === 'hello') {
      // Where we see the client and our second port let it learn its NAT type before it registers; a shorter hello (an
      // older client) gets the cookie alone, as no answer to an unverified source is larger than its request.
      const cookie = this.admission.hello(message, from)
      const altPort = this.altAddress()?.port
      const full: ServerMessage = { ...cookie, public: from, ...(altPort ? { altPort } : {}) }
      return this.replyClear(from, encodeJson(FrameKind.Server, full).length <= size ? full : cookie, size)
    }
    if (!this.registrationLimiter.allow(from.address)) {
      this.stats.limited++
      return this.replyClear(
        from,
        { t: 'error', rid: message.rid, code: 'slow_down', message: 'too many registrations' },
        size,
      )
    }
    return this.replyClear(from, this.admission.register(message, from), size)
  }

  /** A `prove` that opened under the channel its challenge set up: checked, then the name is claimed and registered. */
  private prove(message: Extract<ClientMessage, { t: 'prove' }>, from: Endpoint, now: number): void {
    const channel = this.admission.channelAt(from)
    if (!this.registrationLimiter.allow(from.address)) {
      this.stats.limited++
      return this.sendSealed(
        { endpoint: from, channel },
        encodeJson(FrameKind.Server, {
          t: 'error',
          rid: message.rid,
          code: 'slow_down',
          message: 'too many registrations',
        }),
      )
    }
    const admitted = this.admission.prove(message, from)
    if ('t' in admitted) return this.sendSealed({ endpoint: from, channel }, encodeJson(FrameKind.Server, admitted))
    if (!this.shared)
      return this.enrol(admitted, from, message.rid, now, this.names.claim(admitted.name, admitted.key, now))
    // With Redis, the shared book decides who owns the name (then ours follows it); without an answer, ours does.
    void this.shared.claim(admitted.name, admitted.key, now).then((shared) => {
      const at = Date.now()
      if (shared?.ok) this.names.bind(admitted.name, admitted.key, at)
      this.enrol(admitted, from, message.rid, at, shared ?? this.names.claim(admitted.name, admitted.key, at))
    })
  }

  /** A proven registration whose name claim was answered: into the registry, told, and met by those waiting for it. */
  private enrol(admitted: Admitted, from: Endpoint, rid: string, now: number, claim: ClaimResult): void {
    const before = this.registry.get(admitted.name, now)
    // The name's owner, online or not, and look-alikes: checked before the registry, which knows only who is online.
    if (!claim.ok)
      return this.sendSealed(
        { endpoint: from, channel: admitted.channel },
        encodeJson(FrameKind.Server, { t: 'error', rid, code: claim.code, message: claim.message }),
      )
    this.saveNames()
    const result = this.registry.register(admitted.name, admitted.key, from, admitted.local, now)
    if (!result.ok)
      return this.sendSealed(
        { endpoint: from, channel: admitted.channel },
        encodeJson(FrameKind.Server, { t: 'error', rid, code: result.code, message: result.message }),
      )
    result.registration.nat = admitted.nat
    result.registration.instance = admitted.instance
    result.registration.channel = admitted.channel
    if (result.evicted) {
      // Told, so that it registers again (here, once there is room, or elsewhere) instead of waiting for its keepalive.
      this.send(result.evicted, EVICTED)
      this.shared?.unpublish(result.evicted.name)
      this.logger.info(`${result.evicted.name} made room: the registration idle longest`)
    }
    this.stats.registrations++
    this.logger.info('registered', { name: admitted.name, from: formatEndpoint(from), nat: admitted.nat })
    const altPort = this.altAddress()?.port
    this.send(result.registration, {
      t: 'registered',
      rid,
      name: admitted.name,
      public: from,
      ttlMs: this.ttlMs,
      altPort,
      relay: Boolean(this.relayPolicy),
    })
    // Whoever asked for this name while it was offline, or met it lately, meets it now (after `registered`, so its client
    // knows it is online): a peer that restarted, moved to a new port or changed its key is found at once.
    // A refresh (the same process at the same endpoint with the same key) changes nothing its contacts must learn.
    const refresh =
      before?.key === admitted.key && before.instance === admitted.instance && sameEndpoint(before.endpoint, from)
    if (!refresh) this.shared?.register(shareable(result.registration))
    for (const watcher of refresh ? [] : this.watches.take(admitted.name, now)) {
      const asker = this.registry.get(watcher, now)
      if (asker) this.introduce(asker, result.registration, now)
    }
  }

  /**
   * A reply in clear, to a source that has not proven anything yet (the registration steps, `not_registered`, a health
   * check): only if it is no larger than the request (`budget`), so the server never amplifies.
   */
  private replyClear(to: Endpoint, message: ServerMessage | HealthReply, budget: number): void {
    const bytes = encodeJson(FrameKind.Server, message)
    if (bytes.length > budget) return void this.stats.unsent++
    this.transmit(to, bytes)
  }

  /** A message to a registration, sealed under its channel. */
  private send(to: Registration, message: ServerMessage | ClosingNotice, done?: () => void): void {
    this.sendSealed(to, encodeJson(FrameKind.Server, message), done)
  }

  private sendSealed(to: { endpoint: Endpoint; channel?: ChannelEnd }, frame: Buffer, done?: () => void): void {
    if (!to.channel) return done?.()
    this.transmit(to.endpoint, to.channel.seal(frame), this.socket, done)
  }

  /** Every datagram leaves here: on a dual-stack socket an IPv4 endpoint is written in its IPv6 form. */
  private transmit(to: Endpoint, bytes: Buffer, socket = this.socket, done?: () => void): void {
    const address = this.dualStack && !isIPv6(to.address) ? `::ffff:${to.address}` : to.address
    socket.send(bytes, to.port, address, (error) => {
      if (error) this.logger.debug('send failed', { to: formatEndpoint(to), reason: error.message })
      done?.()
    })
  }
}

/** What the other instances learn of one of ours. */
function shareable(r: Registration): Omit<SharedRegistration, 'at'> {
  return {
    name: r.name,
    key: r.key,
    endpoint: r.endpoint,
    local: r.local,
    nat: r.nat ?? 'unknown',
    ...(r.instance ? { instance: r.instance } : {}),
  }
}

/** `::ffff:a.b.c.d` (an IPv4 client on a dual-stack socket) as `a.b.c.d`: registrations and introductions carry the
 *  address an IPv4 peer can send to. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
