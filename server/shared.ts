// Several instances behind one name, sharing their state in Redis (`udsu server --redis redis://HOST:PORT`).
//
// Each instance keeps its own clients (their NAT mappings and channels) in its Registry; Redis holds what the others
// must see: every live registration with the instance that holds it, the name book (which key owns which name), and a
// heartbeat per instance. Whatever must reach a client of another instance (an introduction, a relay notice, a relayed
// frame) is published on that instance's channel, and that instance seals it and sends it from the address the client
// registered with. Redis is a cache of the instances' own state: after a restart (empty) each instance re-publishes its
// live registrations and its name book, and while Redis is unreachable each instance serves its own clients alone.
// One Redis server, not Redis Cluster (the scripts touch keys they compute).
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Endpoint, Logger } from '../core/types'
import { isEndpoint, NAME_PATTERN, nameSkeleton, type NatType, type ServerMessage } from '../protocol'
import { keyId, takenMessage, type ClaimResult } from './names'

/** A registration as the other instances see it: no channel, and `at` the instance that holds it. */
export interface SharedRegistration {
  name: string
  /** PEM of the client's identity key. */
  key: string
  endpoint: Endpoint
  local: Endpoint[]
  nat: NatType
  /** The client process (PeerIntro.instance). */
  instance?: string
  /** The server instance that holds its NAT mapping and channel. */
  at: string
}

/** Sent to one instance, for one of its clients (`to`, whose key's SHA-256 is `key`: a client that moved or changed key gets nothing). */
export type Forward =
  /** A server message to seal and send; `watch`: the client now waits for that name (introduced again when it registers). */
  | { t: 'send'; to: string; key: string; message: ServerMessage; watch?: string }
  /** `from` (at instance `fromAt`, key `fromKey`) asks to be relayed with `to`: the answer goes back as a `send`. */
  | { t: 'ask-relay'; to: string; key: string; from: string; fromKey: string; fromAt: string; rid?: string }
  /** A relayed frame from `from`, whose instance checked its consent and budget; `frame` in base64. */
  | { t: 'frame'; to: string; key: string; from: string; frame: string }

/** Sent to every instance. */
export type Broadcast =
  /** A client registered anew (not a refresh): others drop their stale copy of it and introduce those waiting for it. */
  | { t: 'registered'; registration: SharedRegistration }
  /** A client said bye: those relayed with it hear `left` from their own instance. */
  | { t: 'left'; name: string; at: string }

export interface SharedOptions {
  url: string
  /** How long a registration lives after its last keepalive (the server's ttlMs). */
  ttlMs: number
  /** How long a name stays bound while its owner is away. */
  releaseAfterMs: number
  /** How often this instance says it is alive; it counts as gone after three missed beats. */
  heartbeatMs: number
  logger: Logger
  /** What this instance must say again when Redis comes back (or first connects): its live clients and its name book. */
  republish(): {
    registrations: Array<Omit<SharedRegistration, 'at'>>
    names: Array<{ name: string; key: string; seen: number }>
  }
  onForward(forward: Forward): void
  onBroadcast(broadcast: Broadcast): void
}

export interface SharedStats {
  /** Messages published to other instances. */
  forwarded: number
  /** Messages that could not be published (Redis unreachable, or too many in flight) or arrived malformed. */
  forwardDropped: number
}

const PREFIX = 'udsu:'
const REG = `${PREFIX}reg:`
const NAME = `${PREFIX}name:`
const ALIVE = `${PREFIX}alive:`
const ONLINE = `${PREFIX}online`
const BROADCAST = `${PREFIX}all`
const channelOf = (instance: string) => `${PREFIX}to:${instance}`
/** At most this many commands waiting for Redis: past it, forwards are dropped (counted), never queued without bound. */
const MAX_IN_FLIGHT = 10_000
/** Names checked per round of a shared `list`, and rounds at most per request. */
const PAGE_BATCH = 256
const PAGE_ROUNDS = 8

/** Binding in Redis: taken (returns the binding) when another key owns it and its owner was seen within the release. */
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local b = cjson.decode(cur)
  if b.key ~= ARGV[1] and tonumber(ARGV[2]) - b.seen < tonumber(ARGV[3]) then return cur end
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return false`
/** The owner was seen: its binding is renewed (re-made after a Redis restart), unless another key owns the name now. */
const SEEN = `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).key ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`
const RELEASE = `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).key == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`
/** A refresh of our own registration: not if another instance holds the name now (the client moved there). */
const REFRESH = `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).at ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[4])
return 1`
const UNPUBLISH = `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).at == ARGV[1] then redis.call('DEL', KEYS[1]) redis.call('ZREM', KEYS[2], ARGV[2]) return 1 end
return 0`
/** A registration, only while its instance heartbeats; one whose instance stopped is dropped here, for everyone. */
const LOOKUP = `
local cur = redis.call('GET', KEYS[1])
if not cur then redis.call('ZREM', KEYS[2], ARGV[2]) return false end
if redis.call('EXISTS', ARGV[1] .. cjson.decode(cur).at) == 1 then return cur end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return false`

export class SharedState {
  readonly instanceId = randomBytes(8).toString('hex')
  readonly stats: SharedStats = { forwarded: 0, forwardDropped: 0 }
  private readonly redis: Redis
  private readonly subscriber: Redis
  private heartbeat?: NodeJS.Timeout
  private inFlight = 0
  private up = false
  /** Whether the outage was already logged (one line per outage, not one per reconnect attempt). */
  private downSaid = false
  private closed = false

  constructor(private readonly options: SharedOptions) {
    const common = {
      // Nothing waits for Redis while it is away: a command then fails at once and the instance serves alone.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectTimeout: 2000,
      retryStrategy: (attempt: number) => Math.min(250 * attempt, 2000),
      lazyConnect: true,
    }
    this.redis = new Redis(options.url, common)
    // Subscribed again by us at each `ready`, so a Redis restart loses no subscription.
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: false })
    this.redis.on('ready', () => this.connected())
    this.redis.on('error', (error: Error) => this.lost(error.message))
    this.redis.on('close', () => this.lost('the connection closed'))
    this.subscriber.on('error', () => undefined) // the main connection reports outages
    this.subscriber.on('ready', () => {
      this.subscriber
        .subscribe(channelOf(this.instanceId), BROADCAST)
        .catch((error: Error) => this.options.logger.warn(`cannot subscribe in Redis: ${error.message}`))
    })
    this.subscriber.on('message', (channel: string, text: string) => this.receive(channel, text))
  }

  /** Connects; resolves once connected or once the first attempt failed (then it keeps trying, and says so). */
  async start(): Promise<void> {
    const first = (client: Redis) => client.connect().catch(() => undefined)
    await Promise.all([first(this.redis), first(this.subscriber)])
    if (!this.up) this.lost('no answer')
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Redis answers now. */
  get available(): boolean {
    return this.up
  }

  /** Where Redis is, without any password the URL may hold. */
  private get where(): string {
    try {
      const url = new URL(this.options.url)
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`
    } catch {
      return 'the configured Redis'
    }
  }

  private connected(): void {
    const wasDown = this.downSaid
    this.up = true
    this.downSaid = false
    this.beat()
    const { registrations, names } = this.options.republish()
    // Redis may have restarted empty: what this instance holds is said again (names only where unbound, SET NX).
    const pipeline = this.redis.pipeline()
    for (const r of registrations) this.refreshIn(pipeline, { ...r, at: this.instanceId })
    for (const n of names) {
      const left = this.options.releaseAfterMs - (Date.now() - n.seen)
      if (left > 0) pipeline.set(NAME + nameSkeleton(n.name), JSON.stringify(n), 'PX', left, 'NX')
    }
    pipeline.exec().catch(() => undefined)
    const said = `Redis at ${this.where} ${wasDown ? 'is back' : 'connected'}: this instance's ${registrations.length} registration(s) and ${names.length} name(s) published; clients of every instance reach each other`
    this.options.logger.info(said)
  }

  private lost(reason: string): void {
    if (this.closed) return
    this.up = this.redis.status === 'ready'
    if (this.up || this.downSaid) return
    this.downSaid = true
    this.options.logger.error(
      `Redis at ${this.where} is unreachable (${reason}): this instance serves its own clients alone (they still meet each other), ` +
        `clients of other instances cannot be reached and names are checked against this instance's book only. ` +
        `Check that redis-server runs and that this host may reach it (firewall); retrying every 2 s`,
    )
  }

  private beat(): void {
    if (!this.up) return
    const ttl = this.options.heartbeatMs * 3
    this.redis.set(ALIVE + this.instanceId, String(Date.now()), 'PX', ttl).catch(() => undefined)
  }

  /**
   * Claims `name` for `key` in the shared book: undefined when Redis is unreachable (the caller then asks its own book).
   */
  async claim(name: string, key: string, now: number): Promise<ClaimResult | undefined> {
    if (!this.up) return undefined
    const id = keyId(key)
    const binding = JSON.stringify({ name, key: id, seen: now })
    try {
      const taken = (await this.redis.eval(
        CLAIM,
        1,
        NAME + nameSkeleton(name),
        id,
        now,
        this.options.releaseAfterMs,
        binding,
      )) as string | null
      if (!taken) return { ok: true }
      const bound = JSON.parse(taken) as { name: string; seen: number }
      return {
        ok: false,
        code: 'name_taken',
        message: takenMessage(name, bound.name, now - bound.seen, this.options.releaseAfterMs),
      }
    } catch {
      return undefined
    }
  }

  release(name: string, key: string): void {
    this.command(() => this.redis.eval(RELEASE, 1, NAME + nameSkeleton(name), keyId(key)))
  }

  /** A client registered here anew: it is this instance's from now on, wherever it was before; the others hear of it. */
  register(registration: Omit<SharedRegistration, 'at'>): void {
    const shared: SharedRegistration = { ...registration, at: this.instanceId }
    this.command(() =>
      this.redis
        .multi()
        .set(REG + shared.name, JSON.stringify(shared), 'PX', this.options.ttlMs)
        .zadd(ONLINE, 0, shared.name)
        .publish(BROADCAST, JSON.stringify({ t: 'registered', registration: shared } satisfies Broadcast))
        .exec(),
    )
  }

  /**
   * Renews this instance's live registrations and their names (the sweeper calls it every ttl/3). Resolves with the
   * names another instance holds now: the caller drops them.
   */
  async refresh(registrations: Array<Omit<SharedRegistration, 'at'>>, now: number): Promise<string[]> {
    if (!this.up || registrations.length === 0) return []
    const pipeline = this.redis.pipeline()
    const shared = registrations.map((r) => ({ ...r, at: this.instanceId }))
    for (const r of shared) {
      this.refreshIn(pipeline, r)
      const id = keyId(r.key)
      pipeline.eval(
        SEEN,
        1,
        NAME + nameSkeleton(r.name),
        id,
        JSON.stringify({ name: r.name, key: id, seen: now }),
        this.options.releaseAfterMs,
      )
    }
    try {
      const results = (await pipeline.exec()) ?? []
      return shared.filter((_, i) => results[i * 2]?.[1] === 0).map((r) => r.name)
    } catch {
      return []
    }
  }

  private refreshIn(pipeline: ReturnType<Redis['pipeline']>, r: SharedRegistration): void {
    pipeline.eval(REFRESH, 2, REG + r.name, ONLINE, this.instanceId, JSON.stringify(r), this.options.ttlMs, r.name)
  }

  /** The name's owner was here at `now` (it left): its absence counts from then. */
  seen(name: string, key: string, now: number): void {
    const id = keyId(key)
    this.command(() =>
      this.redis.eval(
        SEEN,
        1,
        NAME + nameSkeleton(name),
        id,
        JSON.stringify({ name, key: id, seen: now }),
        this.options.releaseAfterMs,
      ),
    )
  }

  /** The client left this instance (bye, expiry, eviction): gone from Redis unless another instance holds it now. */
  unpublish(name: string): void {
    this.command(() => this.redis.eval(UNPUBLISH, 2, REG + name, ONLINE, this.instanceId, name))
  }

  /** A client of another live instance, or undefined (offline, Redis unreachable). */
  async lookup(name: string): Promise<SharedRegistration | undefined> {
    if (!this.up) return undefined
    try {
      const text = (await this.redis.eval(LOOKUP, 2, REG + name, ONLINE, ALIVE, name)) as string | null
      const found = text ? parseRegistration(text) : undefined
      return found && found.at !== this.instanceId ? found : undefined
    } catch {
      return undefined
    }
  }

  /**
   * One page of the names online at every instance, sorted, after `after`, those for which `keep` holds; undefined
   * when Redis is unreachable (the caller lists its own). Checks at most PAGE_ROUNDS × PAGE_BATCH names per request.
   */
  async page(
    after: string | undefined,
    size: number,
    keep: (name: string) => boolean,
  ): Promise<{ names: string[]; more: boolean } | undefined> {
    if (!this.up) return undefined
    const names: string[] = []
    let from = after === undefined ? '-' : `(${after}`
    try {
      for (let round = 0; round < PAGE_ROUNDS; round++) {
        const batch = await this.redis.zrangebylex(ONLINE, from, '+', 'LIMIT', 0, PAGE_BATCH)
        if (batch.length === 0) return { names, more: false }
        const regs = await this.redis.mget(batch.map((n) => REG + n))
        const parsed = regs.map((text) => (text ? parseRegistration(text) : undefined))
        const instances = [...new Set(parsed.flatMap((r) => (r ? [r.at] : [])))]
        const alive = instances.length ? await this.redis.mget(instances.map((i) => ALIVE + i)) : []
        const live = new Set(instances.filter((_, i) => alive[i] !== null))
        for (let i = 0; i < batch.length; i++) {
          const r = parsed[i]
          if (!r || !live.has(r.at) || !keep(batch[i])) continue
          if (names.length === size) return { names, more: true }
          names.push(batch[i])
        }
        if (batch.length < PAGE_BATCH) return { names, more: false }
        from = `(${batch[batch.length - 1]}`
      }
      return { names, more: names.length > 0 }
    } catch {
      return undefined
    }
  }

  /** Publishes to the instance `at`; false (counted) when Redis is unreachable or too much is in flight. */
  forward(at: string, forward: Forward): boolean {
    return this.publish(channelOf(at), JSON.stringify(forward))
  }

  broadcast(broadcast: Broadcast): boolean {
    return this.publish(BROADCAST, JSON.stringify(broadcast))
  }

  private publish(channel: string, text: string): boolean {
    if (!this.up || this.inFlight >= MAX_IN_FLIGHT) {
      this.stats.forwardDropped++
      return false
    }
    this.stats.forwarded++
    this.command(() => this.redis.publish(channel, text))
    return true
  }

  /** Runs a command whose answer nobody waits for, within the in-flight bound; a failure is an outage, reported once. */
  private command(run: () => Promise<unknown>): void {
    if (!this.up || this.inFlight >= MAX_IN_FLIGHT) return
    this.inFlight++
    run().then(
      () => this.inFlight--,
      () => this.inFlight--,
    )
  }

  private receive(channel: string, text: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    if (channel === BROADCAST) {
      const broadcast = parseBroadcast(parsed)
      if (!broadcast) return void this.stats.forwardDropped++
      if ((broadcast.t === 'registered' ? broadcast.registration.at : broadcast.at) === this.instanceId) return
      return this.options.onBroadcast(broadcast)
    }
    const forward = parseForward(parsed)
    if (!forward) return void this.stats.forwardDropped++
    this.options.onForward(forward)
  }

  /** Leaves Redis: this instance's registrations are removed at once (its clients are moving), then it disconnects. */
  async close(names: string[]): Promise<void> {
    clearInterval(this.heartbeat)
    if (this.up) {
      const pipeline = this.redis.pipeline()
      for (const name of names) pipeline.eval(UNPUBLISH, 2, REG + name, ONLINE, this.instanceId, name)
      pipeline.del(ALIVE + this.instanceId)
      await pipeline.exec().catch(() => undefined)
    }
    this.closed = true
    this.redis.disconnect()
    this.subscriber.disconnect()
  }
}

const isName = (v: unknown): v is string => typeof v === 'string' && NAME_PATTERN.test(v)
const isHex = (v: unknown, length: number): v is string =>
  typeof v === 'string' && v.length === length && /^[0-9a-f]+$/.test(v)
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
/** What one instance may ask another to send to a client. */
const FORWARDED = ['intro', 'relay', 'left', 'error']

function parseRegistration(text: string): SharedRegistration | undefined {
  let r: unknown
  try {
    r = JSON.parse(text)
  } catch {
    return undefined
  }
  return checkRegistration(r)
}

function checkRegistration(r: unknown): SharedRegistration | undefined {
  if (!isRecord(r)) return undefined
  const ok =
    isName(r.name) &&
    typeof r.key === 'string' &&
    isEndpoint(r.endpoint) &&
    Array.isArray(r.local) &&
    r.local.every(isEndpoint) &&
    typeof r.nat === 'string' &&
    (r.instance === undefined || typeof r.instance === 'string') &&
    isHex(r.at, 16)
  return ok ? (r as unknown as SharedRegistration) : undefined
}

function parseBroadcast(b: unknown): Broadcast | undefined {
  if (!isRecord(b)) return undefined
  if (b.t === 'registered') {
    const registration = checkRegistration(b.registration)
    return registration ? { t: 'registered', registration } : undefined
  }
  if (b.t === 'left' && isName(b.name) && isHex(b.at, 16)) return { t: 'left', name: b.name, at: b.at }
  return undefined
}

function parseForward(f: unknown): Forward | undefined {
  if (!isRecord(f) || !isName(f.to) || !isHex(f.key, 64)) return undefined
  switch (f.t) {
    case 'send':
      return isRecord(f.message) &&
        FORWARDED.includes(f.message.t as string) &&
        (f.watch === undefined || isName(f.watch))
        ? (f as Forward)
        : undefined
    case 'ask-relay':
      return isName(f.from) &&
        isHex(f.fromKey, 64) &&
        isHex(f.fromAt, 16) &&
        (f.rid === undefined || typeof f.rid === 'string')
        ? (f as Forward)
        : undefined
    case 'frame':
      return isName(f.from) && typeof f.frame === 'string' && f.frame.length <= 4096 ? (f as Forward) : undefined
    default:
      return undefined
  }
}
