// The rendezvous server: names and keys in, introductions out. It never sees message content.
import * as dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { isIPv6 } from 'node:net'
import { createLogger } from '../core/log'
import type { Endpoint, Logger } from '../core/types'
import { decodeFrame, decodeJson, encodeJson, FrameKind, formatEndpoint, sameEndpoint } from '../core/wire'
import { Admission } from './admission'
import { RateLimiter } from './guard'
import { NAMES_PER_REPLY, parseClientMessage, type ClientMessage, type ServerMessage } from './protocol'
import { Registry, type Registration } from './registry'
import { Watches } from './watches'
import { CLOSING, healthReply, parseHealthCheck, type ClosingNotice, type HealthReply } from './service'
import { decodeRelay, DEFAULT_RELAY_LIMITS, encodeRelay, RelayPolicy, type RelayLimits } from './relay'

export interface ServerOptions {
  host?: string
  port?: number
  /** A registration lives this long after its last keepalive. */
  ttlMs?: number
  maxRegistrations?: number
  /**
   * Second UDP port that answers only `mapping` requests, so a client can tell whether its NAT maps per destination
   * (RFC 5780 style). Default: `port + 1`, or any free port when that is taken or `port` is 0; `false` turns it off.
   */
  altPort?: number | false
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
  /** Names and addresses go only in the fields `name`, `peer`, `from`, `to`, `endpoint` (server/logger.ts can redact them). */
  logger?: Logger
}

export interface ServerStats {
  received: number
  /** Not a udsu frame, oversized, not JSON, or not a message we accept. */
  malformed: number
  /** Requests from endpoints that are not registered. */
  unregistered: number
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

export const DEFAULT_LIMITS = { perSecond: 100, burst: 200, registrationsPerSecond: 5, registrationBurst: 10 }

export class RendezvousServer {
  readonly stats: ServerStats = { received: 0, malformed: 0, unregistered: 0, registrations: 0, introductions: 0, relayed: 0, relayedBytes: 0, relayRefused: 0, mappings: 0, limited: 0, unsent: 0 }
  private readonly socket: dgram.Socket
  private readonly altSocket?: dgram.Socket
  /** An IPv6 host (`::`) listens on both families: IPv4 clients arrive as `::ffff:a.b.c.d`, and are answered there. */
  private readonly dualStack: boolean
  private readonly relayPolicy?: RelayPolicy
  private readonly registry: Registry
  /** Who asked for an offline name, or was introduced to a name: introduced to it again as soon as it registers. An hour, 32 names per asker. */
  private readonly watches: Watches
  private readonly admission = new Admission()
  private readonly limiter: RateLimiter
  private readonly registrationLimiter: RateLimiter
  private readonly logger: Logger
  private readonly ttlMs: number
  private sweeper?: NodeJS.Timeout
  /** Counts changes of the registry (registrations, byes, sweeps), so the sorted names for `list` are made again only then. */
  private registryVersion = 0
  private namesCache?: { version: number; at: number; names: string[] }

  constructor(private readonly options: ServerOptions = {}) {
    this.ttlMs = options.ttlMs ?? 45_000
    this.registry = new Registry(this.ttlMs, options.maxRegistrations ?? 10_000)
    const limits = options.limits ?? DEFAULT_LIMITS
    this.limiter = new RateLimiter(limits.perSecond, limits.burst)
    this.registrationLimiter = new RateLimiter(limits.registrationsPerSecond, limits.registrationBurst)
    const watches = options.watches ?? { ttlMs: 60 * 60_000, perClient: 32, total: 100_000 }
    this.watches = new Watches(watches.ttlMs, watches.perClient, watches.total)
    this.logger = options.logger ?? createLogger('info', undefined, 'server')
    this.dualStack = isIPv6(options.host ?? '')
    const family = this.dualStack ? 'udp6' : 'udp4'
    this.socket = dgram.createSocket(family)
    this.socket.on('message', (bytes, rinfo) => this.handle(bytes, { address: unmapped(rinfo.address), port: rinfo.port }))
    this.socket.on('error', (error) => this.logger.error('socket error', { reason: error.message }))
    if (options.altPort !== false) {
      this.altSocket = dgram.createSocket(family)
      this.altSocket.on('message', (bytes, rinfo) => this.handleAlt(bytes, { address: unmapped(rinfo.address), port: rinfo.port }))
      this.altSocket.on('error', (error) => this.logger.error('second socket error', { reason: error.message }))
    }
    if (options.relay) this.relayPolicy = new RelayPolicy(options.relayLimits ?? DEFAULT_RELAY_LIMITS)
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
    this.sweeper = setInterval(() => {
      const now = Date.now()
      this.registryVersion++
      for (const name of this.registry.expire(now)) this.logger.info('expired', { name })
      this.watches.expire(now)
      this.relayPolicy?.prune((r) => this.registry.get(r.name, now) === r)
    }, Math.max(1000, this.ttlMs / 3))
    this.sweeper.unref()
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

  get online(): number {
    return this.registry.size
  }

  /**
   * Tells every registered client that this server is stopping (`closing`), so it can register elsewhere or again when
   * the server is back, then closes. Resolves once the notices have left the socket.
   */
  async drain(): Promise<number> {
    const now = Date.now()
    const clients = this.registry.names(now).flatMap((name) => this.registry.get(name, now) ?? [])
    this.logger.info('draining: telling the clients', { clients: clients.length })
    await Promise.all(clients.map((r) => new Promise<void>((resolve) => this.send(this.socket, encodeJson(FrameKind.Server, CLOSING), r.endpoint, resolve))))
    await this.close()
    return clients.length
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper)
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
    if (this.altSocket) await new Promise<void>((resolve) => this.altSocket!.close(() => resolve()))
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
    if (frame?.kind === FrameKind.Relay) return this.relay(frame.body, from, Date.now())
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const health = json && parseHealthCheck(json)
    if (health) return this.reply(from, healthReply(health), bytes.length)
    const message = json && parseClientMessage(json)
    if (!message) {
      this.stats.malformed++
      this.logger.debug('dropped a malformed datagram', { from: formatEndpoint(from), bytes: bytes.length })
      return
    }
    this.dispatch(message, from, Date.now(), bytes.length)
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
    this.send(this.altSocket!, reply, from)
  }

  /** Forwards one RELAY frame if both peers asked for it and the sender is within its budget; drops it otherwise. */
  private relay(body: Buffer, from: Endpoint, now: number): void {
    const sender = this.registry.touch(from, now)
    const parsed = decodeRelay(body)
    const recipient = parsed && this.registry.get(parsed.name, now)
    if (!this.relayPolicy || !sender || !parsed || !recipient || !this.relayPolicy.allowed(sender, recipient) || !this.relayPolicy.spend(sender, body.length, now)) {
      this.stats.relayRefused++
      return
    }
    let out: Buffer
    try {
      out = encodeRelay(sender.name, parsed.frame)
    } catch {
      // The sender's name is longer than the recipient's and the frame no longer fits a datagram.
      this.stats.relayRefused++
      return
    }
    this.stats.relayed++
    this.stats.relayedBytes += out.length
    this.send(this.socket, out, recipient.endpoint)
  }

  private askRelay(message: Extract<ClientMessage, { t: 'relay' }>, me: Registration, now: number): void {
    if (!this.relayPolicy) return this.reply(me.endpoint, { t: 'error', rid: message.rid, code: 'relay_disabled', message: 'this server does not relay' })
    const peer = this.registry.get(message.to, now)
    if (!peer || peer.name === me.name) {
      return this.reply(me.endpoint, { t: 'error', rid: message.rid, code: 'unknown_peer', message: `${message.to} is not online` })
    }
    const ready = this.relayPolicy.ask(me, peer)
    this.reply(me.endpoint, { t: 'relay', rid: message.rid, peer: peer.name, ready })
    // The peer hears either that we asked (so it can consent too) or that the relay is now open both ways.
    this.reply(peer.endpoint, { t: 'relay', peer: me.name, ready })
    if (ready) this.logger.info('relaying', { name: me.name, peer: peer.name })
  }

  private dispatch(message: ClientMessage, from: Endpoint, now: number, size: number): void {
    if (message.t === 'hello' || message.t === 'register' || message.t === 'prove') return this.admit(message, from, now, size)
    const me = this.registry.touch(from, now)
    if (!me) {
      this.stats.unregistered++
      if (message.t !== 'bye') this.reply(from, { t: 'error', rid: message.rid, code: 'not_registered', message: 'register first' }, size)
      return
    }
    switch (message.t) {
      case 'ping':
        return this.reply(from, { t: 'pong', rid: message.rid, public: from })
      case 'bye':
        this.registry.remove(me.name)
        this.registryVersion++
        // Those relayed with it hear of it from us: its own bye goes only down direct paths.
        for (const asker of this.relayPolicy?.askers(me.name) ?? []) {
          if (this.registry.get(asker.name, now) === asker) this.reply(asker.endpoint, { t: 'left', peer: me.name })
        }
        return this.logger.info('left', { name: me.name })
      case 'list': {
        const peers: string[] = []
        for (const name of this.listedNames(now)) {
          if (peers.length > NAMES_PER_REPLY) break
          if (name !== me.name) peers.push(name)
        }
        return this.reply(from, { t: 'peers', rid: message.rid, peers: peers.slice(0, NAMES_PER_REPLY), more: peers.length > NAMES_PER_REPLY })
      }
      case 'connect': {
        const peer = this.registry.get(message.to, now)
        if (!peer || peer.name === me.name) {
          if (message.to !== me.name) this.watches.add(me.name, message.to, now)
          return this.reply(from, { t: 'error', rid: message.rid, code: 'unknown_peer', message: `${message.to} is not online` })
        }
        return this.introduce(me, peer, now, message.rid)
      }
      case 'relay':
        return this.askRelay(message, me, now)
      case 'mapping':
        return // answered on the second port only
    }
  }

  /**
   * The sorted names `list` answers from. Sorting every name costs ~50 ms at 30,000 clients, so a large registry's
   * copy is made again at most once a second after it changed (a name may show up to a second late or stay a second
   * longer); a small one's at every change.
   */
  private listedNames(now: number): string[] {
    const cache = this.namesCache
    if (!cache || (cache.version !== this.registryVersion && (now - cache.at >= 1000 || this.registry.size <= 1000))) {
      this.namesCache = { version: this.registryVersion, at: now, names: this.registry.names(now) }
    }
    return this.namesCache!.names
  }

  /** Introduces two registrations to each other: both get the same token, which their punches must carry, so a stranger cannot steer the path. */
  private introduce(asker: Registration, peer: Registration, now: number, rid?: string): void {
    const token = randomBytes(16).toString('hex')
    const intro = (r: Registration) => ({ name: r.name, key: r.key, public: r.endpoint, local: r.local, nat: r.nat ?? 'unknown', ...(r.instance ? { instance: r.instance } : {}) })
    this.stats.introductions++
    // Each now waits for the other: if either comes back (a restart, a new port, a new key), both meet again at once.
    this.watches.add(asker.name, peer.name, now)
    this.watches.add(peer.name, asker.name, now)
    this.reply(peer.endpoint, { t: 'intro', peer: intro(asker), token })
    this.reply(asker.endpoint, { t: 'intro', ...(rid ? { rid } : {}), peer: intro(peer), token })
  }

  /** hello → cookie → register → challenge → prove → registered. Nothing is stored, and no RSA work done, before the cookie checks out. */
  private admit(message: Extract<ClientMessage, { t: 'hello' | 'register' | 'prove' }>, from: Endpoint, now: number, size: number): void {
    if (message.t === 'hello') {
      // Where we see the client and our second port let it learn its NAT type before it registers; a shorter hello (an
      // older client) gets the cookie alone, as no answer to an unverified source is larger than its request.
      const cookie = this.admission.hello(message, from)
      const altPort = this.altAddress()?.port
      const full: ServerMessage = { ...cookie, public: from, ...(altPort ? { altPort } : {}) }
      return this.reply(from, encodeJson(FrameKind.Server, full).length <= size ? full : cookie, size)
    }
    if (!this.registrationLimiter.allow(from.address)) {
      this.stats.limited++
      return this.reply(from, { t: 'error', rid: message.rid, code: 'slow_down', message: 'too many registrations' }, size)
    }
    if (message.t === 'register') return this.reply(from, this.admission.register(message, from), size)
    const admitted = this.admission.prove(message, from)
    if ('t' in admitted) return this.reply(from, admitted)
    const before = this.registry.get(admitted.name, now)
    const result = this.registry.register(admitted.name, admitted.key, from, admitted.local, now)
    if (!result.ok) return this.reply(from, { t: 'error', rid: message.rid, code: result.code, message: result.message })
    this.registryVersion++
    result.registration.nat = admitted.nat
    result.registration.instance = admitted.instance
    this.stats.registrations++
    this.logger.info('registered', { name: admitted.name, from: formatEndpoint(from), nat: admitted.nat })
    const altPort = this.altAddress()?.port
    this.reply(from, { t: 'registered', rid: message.rid, name: admitted.name, public: from, ttlMs: this.ttlMs, altPort, relay: Boolean(this.relayPolicy) })
    // Whoever asked for this name while it was offline, or met it lately, meets it now (after `registered`, so its client
    // knows it is online): a peer that restarted, moved to a new port or changed its key is found at once.
    // A refresh (the same process at the same endpoint with the same key) changes nothing its contacts must learn.
    const refresh = before?.key === admitted.key && before.instance === admitted.instance && sameEndpoint(before.endpoint, from)
    for (const watcher of refresh ? [] : this.watches.take(admitted.name, now)) {
      const asker = this.registry.get(watcher, now)
      if (asker) this.introduce(asker, result.registration, now)
    }
  }

  /** Sends a reply; with a `budget` (the size of an unverified request), only if it is no larger, so the server never amplifies. */
  private reply(to: Endpoint, message: ServerMessage | HealthReply | ClosingNotice, budget?: number): void {
    const bytes = encodeJson(FrameKind.Server, message)
    if (budget !== undefined && bytes.length > budget) {
      this.stats.unsent++
      return
    }
    this.send(this.socket, bytes, to)
  }

  /** Every datagram leaves here: on a dual-stack socket an IPv4 endpoint is written in its IPv6 form. */
  private send(socket: dgram.Socket, bytes: Buffer, to: Endpoint, done?: () => void): void {
    const address = this.dualStack && !isIPv6(to.address) ? `::ffff:${to.address}` : to.address
    socket.send(bytes, to.port, address, (error) => {
      if (error) this.logger.debug('send failed', { to: formatEndpoint(to), reason: error.message })
      done?.()
    })
  }
}

/** `::ffff:a.b.c.d` (an IPv4 client on a dual-stack socket) as `a.b.c.d`: registrations and introductions carry the
 *  address an IPv4 peer can send to. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
