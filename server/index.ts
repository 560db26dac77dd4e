// The rendezvous server: names and keys in, introductions out. It never sees message content.
import * as dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { createLogger } from '../core/log'
import type { Endpoint, Logger } from '../core/types'
import { decodeFrame, decodeJson, encodeJson, FrameKind, formatEndpoint } from '../core/wire'
import { checkRsaPublicKey, NAMES_PER_REPLY, parseClientMessage, type ClientMessage, type ServerMessage } from './protocol'
import { Registry } from './registry'

export interface ServerOptions {
  host?: string
  port?: number
  /** A registration lives this long after its last keepalive. */
  ttlMs?: number
  maxRegistrations?: number
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
}

export class RendezvousServer {
  readonly stats: ServerStats = { received: 0, malformed: 0, unregistered: 0, registrations: 0, introductions: 0 }
  private readonly socket = dgram.createSocket('udp4')
  private readonly registry: Registry
  private readonly logger: Logger
  private readonly ttlMs: number
  private sweeper?: NodeJS.Timeout

  constructor(private readonly options: ServerOptions = {}) {
    this.ttlMs = options.ttlMs ?? 45_000
    this.registry = new Registry(this.ttlMs, options.maxRegistrations ?? 10_000)
    this.logger = options.logger ?? createLogger('info', undefined, 'server')
    this.socket.on('message', (bytes, rinfo) => this.handle(bytes, { address: rinfo.address, port: rinfo.port }))
    this.socket.on('error', (error) => this.logger.error(`socket error: ${error.message}`))
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
    this.sweeper = setInterval(() => {
      for (const name of this.registry.expire(Date.now())) this.logger.info(`${name} expired`)
    }, Math.max(1000, this.ttlMs / 3))
    this.sweeper.unref()
    return this.address()
  }

  address(): Endpoint {
    const { address, port } = this.socket.address()
    return { address, port }
  }

  get online(): number {
    return this.registry.size
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper)
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
  }

  private handle(bytes: Buffer, from: Endpoint): void {
    this.stats.received++
    const frame = decodeFrame(bytes)
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const message = json && parseClientMessage(json)
    if (!message) {
      this.stats.malformed++
      this.logger.debug('dropped a malformed datagram', { from: formatEndpoint(from), bytes: bytes.length })
      return
    }
    this.dispatch(message, from, Date.now())
  }

  private dispatch(message: ClientMessage, from: Endpoint, now: number): void {
    if (message.t === 'register') return this.register(message, from, now)
    const me = this.registry.touch(from, now)
    if (!me) {
      this.stats.unregistered++
      if (message.t !== 'bye') this.reply(from, { t: 'error', rid: message.rid, code: 'not_registered', message: 'register first' })
      return
    }
    switch (message.t) {
      case 'ping':
        return this.reply(from, { t: 'pong', rid: message.rid, public: from })
      case 'bye':
        this.registry.remove(me.name)
        return this.logger.info(`${me.name} left`)
      case 'list': {
        const names = this.registry.names(now).filter((name) => name !== me.name)
        return this.reply(from, { t: 'peers', rid: message.rid, peers: names.slice(0, NAMES_PER_REPLY), more: names.length > NAMES_PER_REPLY })
      }
      case 'connect': {
        const peer = this.registry.get(message.to, now)
        if (!peer || peer.name === me.name) {
          return this.reply(from, { t: 'error', rid: message.rid, code: 'unknown_peer', message: `${message.to} is not online` })
        }
        // Both sides get the same token; their punches must carry it, so a stranger cannot steer the path.
        const token = randomBytes(16).toString('hex')
        const intro = (r: typeof me) => ({ name: r.name, key: r.key, public: r.endpoint, local: r.local })
        this.stats.introductions++
        this.reply(peer.endpoint, { t: 'intro', peer: intro(me), token })
        return this.reply(from, { t: 'intro', rid: message.rid, peer: intro(peer), token })
      }
    }
  }

  private register(message: Extract<ClientMessage, { t: 'register' }>, from: Endpoint, now: number): void {
    const badKey = checkRsaPublicKey(message.key)
    if (badKey) return this.reply(from, { t: 'error', rid: message.rid, code: 'bad_key', message: badKey })
    const result = this.registry.register(message.name, message.key, from, message.local, now)
    if (!result.ok) return this.reply(from, { t: 'error', rid: message.rid, code: result.code, message: result.message })
    this.stats.registrations++
    this.logger.info(`${message.name} registered`, { from: formatEndpoint(from) })
    this.reply(from, { t: 'registered', rid: message.rid, name: message.name, public: from, ttlMs: this.ttlMs })
  }

  private reply(to: Endpoint, message: ServerMessage): void {
    this.socket.send(encodeJson(FrameKind.Server, message), to.port, to.address, (error) => {
      if (error) this.logger.debug(`send to ${formatEndpoint(to)} failed: ${error.message}`)
    })
  }
}
