// The client side of the rendezvous server: registration (hello → cookie, register → challenge, prove → registered),
// the server key pinned per HOST:PORT, the sealed channel every later datagram goes through, keepalive pings,
// re-registration when the server forgets us or says it is `closing`, and the requests (connect, relay, list, release).
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import * as os from 'node:os'
import type {
  EmbeddedServerService,
  Endpoint,
  Frame,
  Logger,
  Problem,
  Profile,
  ServerState,
  Transport,
} from '../../core'
import { FrameKind } from '../../core'
import {
  ChannelEnd,
  decodeJson,
  decodeServerKey,
  encodeJson,
  encodeRelay,
  ephemeralKey,
  formatEndpoint,
  HELLO_PAD,
  MAPPING_PAD,
  parseServerList,
  parseServerMessage,
  PING_PAD,
  registrationProof,
  sameEndpoint,
  serverFingerprint,
  verifyTranscript,
  decodeRelay,
  type ClientMessage,
  type NatType,
  type PeerIntro,
  type ServerMessage,
  type Transcript,
} from '../../protocol'
import { MAX_LOCAL_CANDIDATES } from './send-policy'

export interface RendezvousOptions {
  keepaliveMs: number
  requestTimeoutMs: number
  embeddedServer: boolean
}

/** What the client tells its owner: the server state, problems, and what the server sent under the channel. */
export interface RendezvousEvents {
  /** The server state changed (online or not, and why); also the first state. */
  state(state: ServerState): void
  problem(problem: Problem): void
  /** Registered or not (`relays`: the server offers its relay); `renewed` after each successful registration. */
  registered(online: boolean, relays: boolean, renewed: boolean): void
  nat(nat: NatType): void
  intro(peer: PeerIntro, token: string): void
  left(name: string): void
  /** `name` asked the server to relay with us; `ready` once both asked. */
  relay(name: string, ready: boolean): void
  /** The server relayed a frame from `name` (sealed end to end; the owner re-injects it). */
  relayed(name: string, frame: Buffer, from: Endpoint): void
  /** The keepalive tick ran (every `keepaliveMs` while registered): the paths' keepalives go with it. */
  tick(): void
}

export interface RendezvousDeps {
  options: RendezvousOptions
  me: { name: string; publicKey: string; sign(data: Buffer): Buffer }
  /** `HOST:PORT[#SHA256:…]` (several separated by commas), as configured when the client starts. */
  server: () => string
  log: Logger
  profile: Profile
  embedded: () => EmbeddedServerService | undefined
  events: RendezvousEvents
}

/** A registration whose hello was answered but a later step was not is followed at once by another, this many times. */
const LOST_STEP_RETRIES = 2
/** While offline, registering is retried after 500 ms, then doubling up to 2 s. */
const FIRST_OFFLINE_RETRY_MS = 500
const OFFLINE_RETRY_MS = 2_000
/** With several servers, how soon an unanswered ping is followed by another (two unanswered: the next server). */
const RECHECK_MS = 1_000
/** Server answers that mean "not now" rather than "no": registering is retried, after ~BUSY_RETRY_MS, doubling. */
const BUSY_CODES: ReadonlySet<string> = new Set(['slow_down', 'full'])
const BUSY_RETRIES = 4
const BUSY_RETRY_MS = 250
/** Tries of each registration step after the hello (see admit). */
const STEP_ATTEMPTS = 3
/**
 * Requests the path machine makes on its own (new introductions, relay asks) in flight at once: a server that introduces
 * thousands of names must not make us keep a request (and its timer) for each; one over is skipped, as if unanswered.
 */
export const MAX_BACKGROUND_REQUESTS = 32
/** `list` pages a client asks for at most in one go (40 names each). */
const MAX_LIST_PAGES = 10
/** Server keys pinned on first use, by `host:port` as configured (the profile file). */
export const KNOWN_SERVERS_FILE = 'known-servers.json'
const NONE: ReadonlySet<string> = new Set()
/**
 * The requests that go in clear, and the answers each may get in clear: the registration's steps, before there are keys
 * (a `registered` comes only sealed), and NAT detection on the second port. Every other answer must open under the channel.
 */
const CLEAR_ANSWERS: Readonly<Record<string, ReadonlySet<string>>> = {
  hello: new Set(['cookie', 'error']),
  register: new Set(['challenge', 'error']),
  mapping: new Set(['mapped', 'error']),
}

export class RendezvousClient {
  /** This process, as introductions show it to peers: a new one at each start tells them we restarted. */
  readonly instance = randomBytes(8).toString('hex')
  private transport?: Transport
  private server?: Endpoint
  /** The server's second port, for NAT detection; learned from the cookie at each registration. */
  private serverAlt?: Endpoint
  /** A second port that never answered (a firewall lets only the main one through): not asked again. */
  private silentAlt?: Endpoint
  private myNat: NatType = 'unknown'
  private relays = false
  private online = false
  /** The server state last reported, so frontends hear each change once (and the first state too). */
  private reported?: boolean
  private stopped = false
  private keepalive?: NodeJS.Timeout
  private failedPings = 0
  /** Whether the latest admit() had its hello answered (see register). */
  private helloAnswered = false
  /** Registrations tried since we were last online: the first retries come sooner (see schedule). */
  private offlineTries = 0
  /** Registrations since we were last online that lost a step after the hello was answered; whether the latest did. */
  private lostSteps = 0
  private lostStep = false
  /** The channel of our registration, and the one a registration in progress sets up (it becomes the channel when its
   *  `registered` arrives through it). */
  private channel?: ChannelEnd
  private nextChannel?: ChannelEnd
  /** Servers (by label) that presented another key than the one pinned or configured: never registered with again,
   *  each with its reason; once every one has, registration stops. */
  private readonly keyRefused = new Map<string, string>()
  /** The configured servers, tried in order, and the one in use (or being tried). */
  private servers: ReturnType<typeof parseServerList> = []
  /** The servers as configured, read at start (a frontend's start window may change them before). */
  private configured = ''
  private current = 0
  /** The server in use said `closing`: the next tick moves on to the next one. */
  private leaving = false
  /** A `not_registered` in clear (the server cannot seal to an endpoint it forgot): only a hint, acted on when pings go unanswered. */
  private heardNotRegistered = false
  /** Requests waiting for their answer, by rid, with the answers they take in clear (registration steps only). */
  /** Requests in flight that the path machine made (see MAX_BACKGROUND_REQUESTS). */
  private background = 0
  private readonly pending = new Map<
    string,
    { resolve: (message: ServerMessage) => void; clear: ReadonlySet<string> }
  >()
  constructor(private readonly deps: RendezvousDeps) {}

  get registered(): boolean {
    return this.online
  }

  /** `HOST:PORT` of the server in use, or being tried. */
  get label(): string {
    return this.servers[this.current]?.label ?? ''
  }

  private get address(): { host: string; port: number; fingerprint?: string } {
    return this.servers[this.current]
  }

  /** Resolves the first server's address, registers (or fails to, and keeps trying on the offline schedule). */
  async start(transport: Transport): Promise<void> {
    this.transport = transport
    this.configured = this.deps.server()
    this.servers = parseServerList(this.configured)
    this.server = await this.resolve()
    await this.register()
    this.schedule()
  }

  private async resolve(): Promise<Endpoint> {
    return { address: (await lookup(this.address.host, { family: 4 })).address, port: this.address.port }
  }

  /**
   * Moves to the next configured server: everything learned from the last one goes (its channel, second port, pings),
   * and the next registration is there, from scratch (servers need not share state). Paths to peers stay.
   */
  private async moveOn(): Promise<void> {
    if (this.servers.length < 2) return
    const from = this.label
    for (let i = 0; i < this.servers.length; i++) {
      this.current = (this.current + 1) % this.servers.length
      if (!this.keyRefused.has(this.label)) break
    }
    this.channel = undefined
    this.nextChannel = undefined
    this.serverAlt = undefined
    this.heardNotRegistered = false
    this.failedPings = 0
    this.server = undefined
    this.server = await this.resolve().catch(
      (error: Error) => (this.deps.log.info(`server ${this.label}: ${error.message}`), undefined),
    )
    this.deps.log.info(`moving from server ${from} to ${this.label}`)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.keepalive)
    if (this.transport && this.server && this.online) await this.send({ t: 'bye' })
  }

  /**
   * A datagram's frame: from the server only the registration's answers come in clear; the rest is sealed under the
   * channel. True when claimed; undefined leaves it unclaimed, so the core drops and counts it: never acted on.
   */
  receive(frame: Frame, from: Endpoint): true | undefined {
    if (!this.server) return undefined
    if (frame.kind === FrameKind.Server) {
      if (!(sameEndpoint(from, this.server) || (this.serverAlt !== undefined && sameEndpoint(from, this.serverAlt))))
        return undefined
      const json = decodeJson(frame.body)
      const message = json && parseServerMessage(json)
      return message && this.handle(message, false) ? true : undefined
    }
    if (frame.kind !== FrameKind.Channel || !sameEndpoint(from, this.server)) return undefined
    const inner = this.channel?.open(frame.body) ?? this.nextChannel?.open(frame.body)
    if (!inner) return (this.deps.log.debug('a server frame that does not open under our keys: dropped'), undefined)
    if (inner.kind === FrameKind.Server) {
      const json = decodeJson(inner.body)
      const message = json && parseServerMessage(json)
      return message && this.handle(message, true) ? true : undefined
    }
    if (inner.kind !== FrameKind.Relay) return undefined
    const relayed = decodeRelay(inner.body)
    if (relayed) this.deps.events.relayed(relayed.name, Buffer.from(relayed.frame), from)
    return true
  }

  /** Sends a frame to `peer` through the server's relay, sealed under the channel; false when not registered. */
  async relay(peer: string, bytes: Buffer): Promise<boolean> {
    if (!this.channel || !this.transport || !this.server) return false
    await this.transport.send(this.channel.seal(encodeRelay(peer, bytes)), this.server)
    return true
  }

  /** Asks to be introduced to `peer`: the `intro` (also handed to `events.intro`), an `error`, or undefined on no answer. */
  async connect(peer: string): Promise<ServerMessage | undefined> {
    const reply = await this.request({ t: 'connect', rid: rid(), to: peer })
    if (reply?.t === 'intro') this.deps.events.intro(reply.peer, reply.token)
    return reply
  }

  /** Asks again for an introduction to `peer` whose copy we seem to have missed (in the background). */
  async askIntro(peer: string): Promise<void> {
    await this.inBackground(() => this.connect(peer))
  }

  /** Asks the server to introduce us to `peer` again; re-registers first when the server forgot us (it restarted). */
  async reintroduce(peer: string): Promise<void> {
    const reply = await this.inBackground(() => this.connect(peer))
    if (reply?.t === 'error' && reply.code === 'not_registered' && this.online) {
      this.setOnline(false, 'the server forgot us (it restarted)')
      if (await this.register()) void this.reintroduce(peer)
    }
  }

  /** Asks the server to relay to and from `peer`: ready (both asked), asked (waiting for the peer), or refused. */
  async askRelay(peer: string): Promise<'ready' | 'asked' | 'refused'> {
    const reply = await this.inBackground(() => this.request({ t: 'relay', rid: rid(), to: peer }))
    if (reply?.t === 'relay') return reply.ready ? 'ready' : 'asked'
    if (reply?.t === 'error') this.deps.log.info(`no relay to ${peer}: ${reply.message}`)
    return 'refused'
  }

  /** Runs a request the path machine asked for, unless MAX_BACKGROUND_REQUESTS are in flight (then: no answer). */
  private async inBackground(ask: () => Promise<ServerMessage | undefined>): Promise<ServerMessage | undefined> {
    if (this.background >= MAX_BACKGROUND_REQUESTS)
      return (this.deps.log.debug('too many requests in flight: one skipped'), undefined)
    this.background++
    try {
      return await ask()
    } finally {
      this.background--
    }
  }

  /** Gives our name up at the server; the error to show, or undefined once released. */
  async release(): Promise<string | undefined> {
    if (!this.online) return 'not registered with the server'
    const reply = await this.request({ t: 'release', rid: rid() })
    if (reply?.t !== 'released')
      return `the server did not release ${this.deps.me.name}: ${reply?.t === 'error' ? reply.message : 'no answer'}`
    return undefined
  }

  /** Names online matching `query`, page after page up to MAX_LIST_PAGES (the server sends NAMES_PER_REPLY a page). */
  async list(query?: string): Promise<{ names: string[]; more: boolean } | undefined> {
    const names: string[] = []
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const reply = await this.request({
        t: 'list',
        rid: rid(),
        ...(query ? { query } : {}),
        ...(names.length ? { after: names[names.length - 1] } : {}),
      })
      if (reply?.t !== 'peers') return names.length ? { names, more: true } : undefined
      names.push(...reply.peers)
      if (!reply.more || reply.peers.length === 0) return { names, more: false }
    }
    return { names, more: true }
  }

  // --- the server key ---

  /** The fingerprint we expect: the one configured (`HOST:PORT#SHA256:…`), else the one pinned on first use. */
  private expectedServerKey(): string | undefined {
    return (
      this.address.fingerprint ?? this.deps.profile.readJson<Record<string, string>>(KNOWN_SERVERS_FILE)?.[this.label]
    )
  }

  private pinServerKey(fingerprint: string): void {
    const known = this.deps.profile.readJson<Record<string, string>>(KNOWN_SERVERS_FILE) ?? {}
    if (known[this.label] === fingerprint) return
    this.deps.profile.writeJson(KNOWN_SERVERS_FILE, { ...known, [this.label]: fingerprint })
    this.deps.log.info(`pinned the key of server ${this.label}: ${fingerprint}`)
  }

  // --- requests ---

  /** The registration's first two steps (and NAT detection) go in clear; the proof sealed under the channel its challenge
   * set up (it carries our LAN endpoints); everything else sealed under the registration's channel. */
  private send(message: ClientMessage, to: Endpoint | undefined = this.server): Promise<void> {
    const transport = this.transport
    if (!transport || !to) return Promise.resolve()
    const frame = encodeJson(FrameKind.Server, message)
    const failed = (error: Error) => this.deps.log.debug(`send to server failed: ${error.message}`)
    if (CLEAR_ANSWERS[message.t]) return transport.send(frame, to).catch(failed)
    const channel = message.t === 'prove' ? this.nextChannel : this.channel
    if (!channel) return Promise.resolve()
    return transport.send(channel.seal(frame), to).catch(failed)
  }

  /** Sends a request, resending on timeout; resolves with the reply, or undefined after the last attempt. */
  private async request(
    message: ClientMessage & { rid: string },
    attempts = 3,
    to: Endpoint | undefined = this.server,
  ): Promise<ServerMessage | undefined> {
    for (let attempt = 0; attempt < attempts && !this.stopped; attempt++) {
      const reply = await new Promise<ServerMessage | undefined>((resolve) => {
        const timer = setTimeout(
          () => {
            this.pending.delete(message.rid)
            resolve(undefined)
          },
          this.deps.options.requestTimeoutMs * (attempt + 1),
        )
        const resolveWith = (m: ServerMessage) => {
          clearTimeout(timer)
          this.pending.delete(message.rid)
          resolve(m)
        }
        this.pending.set(message.rid, { resolve: resolveWith, clear: CLEAR_ANSWERS[message.t] ?? NONE })
        void this.send(message, to)
      })
      if (reply) return reply
    }
    return undefined
  }

  /** A message from the server; `sealed` when it opened under the channel. False when it is not acted on. */
  private handle(message: ServerMessage, sealed: boolean): boolean {
    const waiting = message.rid === undefined ? undefined : this.pending.get(message.rid)
    if (waiting && (sealed || waiting.clear.has(message.t))) return (waiting.resolve(message), true)
    if (!sealed) {
      if (message.t !== 'error' || message.code !== 'not_registered' || message.rid !== undefined) return false
      this.heardNotRegistered = true
      return true
    }
    const { events } = this.deps
    if (message.t === 'intro') events.intro(message.peer, message.token)
    else if (message.t === 'closing') this.closing()
    else if (message.t === 'left') events.left(message.peer)
    else if (message.t === 'relay') events.relay(message.peer, message.ready === true)
    return true
  }

  // --- registration ---

  private localEndpoints(): Endpoint[] {
    const port = this.transport!.local().port
    const addresses = Object.values(os.networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address)
    // A peer punches at most MAX_LOCAL_CANDIDATES of them: more would only make the registration longer.
    return [...new Set(addresses)].slice(0, MAX_LOCAL_CANDIDATES).map((address) => ({ address, port }))
  }

  private setOnline(online: boolean, reason?: string, publicEndpoint?: Endpoint, renewed = false): void {
    this.online = online
    this.deps.events.registered(online, this.relays, renewed)
    if (online === this.reported) return
    this.reported = online
    this.deps.events.state({ online, server: this.configured, current: this.label, publicEndpoint, reason })
    this.deps.log.info(online ? `registered at ${this.label}` : `server ${this.label} lost: ${reason}`)
  }

  /**
   * hello → cookie, register → challenge, prove → registered: the server checks our address, then our key. The cookie
   * says where the server sees us and where its second port is, so the NAT type is learned in between and registered.
   */
  private async admit(): Promise<ServerMessage | undefined> {
    const { me, log } = this.deps
    this.helloAnswered = false
    const cookie = await this.request({ t: 'hello', rid: rid(), pad: HELLO_PAD }, 2)
    if (cookie?.t !== 'cookie') return (log.debug('hello unanswered'), cookie)
    this.helloAnswered = true
    this.serverAlt = cookie.altPort && this.server ? { address: this.server.address, port: cookie.altPort } : undefined
    if (cookie.public) {
      const detected = await this.detectNat(cookie.public)
      if (detected !== this.myNat) log.info(`NAT type: ${detected}`, { public: formatEndpoint(cookie.public) })
      this.myNat = detected
      this.deps.events.nat(detected)
    }
    const eph = ephemeralKey()
    // The server answered the hello, so it is there: the later steps get a third try (500, 1000, 1500 ms) before the
    // whole registration starts over, since under 20 % loss two tries of a step both fail one time in eight.
    const challenge = await this.request(
      {
        t: 'register',
        rid: rid(),
        cookie: cookie.cookie,
        name: me.name,
        key: me.publicKey,
        eph: eph.public,
      },
      STEP_ATTEMPTS,
    )
    if (challenge?.t !== 'challenge') return (log.debug('register unanswered', { reply: challenge }), challenge)
    // The server proves it holds its long-term key by signing this registration's transcript: a key other than the
    // one we pinned or were given is someone else answering at its address, and we stop (as ssh does).
    const serverKey = decodeServerKey(challenge.skey)
    const transcript: Transcript = {
      nonce: challenge.nonce,
      name: me.name,
      clientKey: me.publicKey,
      clientEph: eph.public,
      serverEph: challenge.eph,
      serverKey: challenge.skey,
    }
    if (!serverKey || !verifyTranscript(serverKey, transcript, challenge.ssig))
      return (log.debug('a challenge with a bad server signature: ignored'), undefined)
    const fingerprint = serverFingerprint(serverKey)
    const expected = this.expectedServerKey()
    if (expected !== undefined && expected !== fingerprint) {
      this.keyRefused.set(
        this.label,
        `the server at ${this.label} presented the key ${fingerprint}, not the expected ${expected}: someone may be posing as it. ` +
          `If its key really changed, remove its line from ${this.deps.profile.path(KNOWN_SERVERS_FILE)} or give --server ${this.label}#${fingerprint}`,
      )
      return undefined
    }
    this.nextChannel = ChannelEnd.derive('client', eph, challenge.eph, transcript)
    if (!this.nextChannel) return (log.debug('a challenge with an unusable ephemeral key: ignored'), undefined)
    const proven = await this.request(
      {
        t: 'prove',
        rid: rid(),
        sig: me.sign(registrationProof(transcript)).toString('base64'),
        local: this.localEndpoints(),
        nat: this.myNat,
        instance: this.instance,
      },
      STEP_ATTEMPTS,
    )
    if (proven?.t !== 'registered') return (log.debug('prove unanswered', { reply: proven }), proven)
    // It came sealed under the new keys (see receive), so the server behind the key we checked sent it.
    this.channel = this.nextChannel
    this.nextChannel = undefined
    this.heardNotRegistered = false
    if (expected === undefined) this.pinServerKey(fingerprint)
    return proven
  }

  private async register(): Promise<boolean> {
    if (this.keyRefused.size === this.servers.length) return false
    if (this.keyRefused.has(this.label) || !this.server) return this.failed('no answer')
    let reply = await this.admit()
    const refused = this.keyRefused.get(this.label)
    if (refused) {
      this.deps.events.problem({ source: 'hole-punch', code: 'server-key-changed', message: refused })
      return this.failed(refused)
    }
    // The server answered our hello, so a later step that went unanswered was lost on the way, request or answer
    // (four round trips in a row: under 20 % loss one registration in three loses a step twice): the next
    // registration starts at once (see schedule), not at the next offline retry. Not here: the client's start
    // waits for this call, and what peers send us meanwhile is shown only once it is over.
    this.lostStep = reply === undefined && this.helloAnswered
    if (this.lostStep) this.lostSteps++
    for (
      let busy = 0;
      reply?.t === 'error' && BUSY_CODES.has(reply.code) && busy < BUSY_RETRIES && !this.stopped;
      busy++
    ) {
      // Busy is not a refusal (the server's limit per address, or its table of pending registrations): clients behind
      // one NAT share an address, so each waits a random while and they come back spread out, not together again.
      this.deps.log.debug(`server busy (${reply.message}); registering again shortly`)
      await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS * 2 ** busy * (0.5 + Math.random())))
      reply = await this.admit()
    }
    if (reply?.t === 'registered') {
      this.failedPings = 0
      this.offlineTries = 0
      this.lostSteps = 0
      this.relays = reply.relay === true
      this.setOnline(true, undefined, reply.public, true)
      return true
    }
    if (reply?.t === 'error' && BUSY_CODES.has(reply.code)) {
      return this.failed(`the server is busy (${reply.message}); trying again`)
    }
    if (reply?.t === 'error') {
      // A refusal is final for this attempt and the user must see it (a taken name, a rejected key).
      this.deps.events.problem({
        source: 'hole-punch',
        code: 'registration-refused',
        message: `the server refused the registration: ${reply.message}`,
      })
      return this.failed(reply.message)
    }
    // The embedded server stands in for a single local default only: with a list, the next server is tried instead.
    const embedded = this.deps.options.embeddedServer && this.servers.length === 1 ? this.deps.embedded() : undefined
    if (embedded) {
      const attempt = await embedded.start(this.configured)
      if (attempt.kind === 'started' || attempt.kind === 'ask-again') return this.register()
      if (attempt.kind === 'held') {
        if (attempt.tell) this.deps.events.problem({ source: 'hole-punch', message: attempt.tell })
        this.setOnline(false, attempt.reason)
        return false
      }
    }
    return this.failed('no answer')
  }

  /** A registration that did not succeed: offline, and with several servers, the next one is tried at the next attempt. */
  private async failed(reason: string): Promise<false> {
    this.setOnline(false, reason)
    await this.moveOn()
    return false
  }

  /**
   * Asks the server's second port which public endpoint it sees from our socket. The same endpoint as the main port saw
   * means our NAT maps independently of the destination (or there is none); another port means a symmetric NAT.
   */
  private async detectNat(seenByMain: Endpoint): Promise<NatType> {
    const alt = this.serverAlt
    if (!alt || (this.silentAlt && sameEndpoint(alt, this.silentAlt))) return 'unknown'
    const reply = await this.request({ t: 'mapping', rid: rid(), pad: MAPPING_PAD }, 2, alt)
    if (reply?.t !== 'mapped') {
      this.deps.log.info("the server's second port does not answer: NAT type unknown", { port: alt.port })
      this.silentAlt = alt
      return 'unknown'
    }
    return sameEndpoint(reply.public, seenByMain) ? 'eim' : 'symmetric'
  }

  private async tick(): Promise<void> {
    if (this.stopped) return
    if (!this.online) {
      if (this.leaving) await this.moveOn()
      this.leaving = false
      await this.register()
    } else {
      const reply = await this.request({ t: 'ping', rid: rid(), pad: PING_PAD }, 1)
      if (reply?.t === 'pong') this.failedPings = 0
      // The server restarted, or our NAT moved us: it answers in clear, which alone proves nothing, so only with the
      // ping unanswered under our keys.
      else if (this.heardNotRegistered) await this.register()
      else if (++this.failedPings >= 2) {
        this.setOnline(false, 'keepalive unanswered')
        await this.moveOn()
        await this.register()
      }
    }
    this.deps.events.tick()
  }

  private schedule(now?: number): void {
    if (this.stopped) return
    // While offline, try the server more often than the steady keepalive: soon at first (a lost hello is more likely
    // than a server gone), then every OFFLINE_RETRY_MS.
    const lost = this.lostStep && this.lostSteps <= LOST_STEP_RETRIES
    const { keepaliveMs } = this.deps.options
    // With other servers to go to, one unanswered ping is checked again within a second, so a dead server is left
    // within a keepalive and a second or two, not two keepalives.
    const recheck = this.online && this.failedPings > 0 && this.servers.length > 1
    const delay =
      now !== undefined
        ? now
        : recheck
          ? Math.min(keepaliveMs, RECHECK_MS)
          : this.online
            ? keepaliveMs
            : lost
              ? 0
              : Math.min(keepaliveMs, OFFLINE_RETRY_MS, FIRST_OFFLINE_RETRY_MS * 2 ** this.offlineTries++)
    this.keepalive = setTimeout(() => {
      this.keepalive = undefined
      void this.tick().finally(() => this.schedule())
    }, delay)
  }

  /**
   * The server said it is stopping: offline now, not after two keepalives go unanswered (30 s by default), and the
   * next registration on the offline schedule (0.5 s, 1 s, 2 s, …), so a restarted server is found within seconds.
   * Paths to peers do not depend on the server and stay.
   */
  private closing(): void {
    if (!this.online) return
    this.setOnline(false, 'the server is stopping')
    this.offlineTries = 0
    // With several servers, the next tick moves to the next one and registers there at once.
    this.leaving = true
    // Between ticks, the steady keepalive is replaced by the offline schedule; during one, it ends and schedules that.
    if (this.keepalive === undefined) return
    clearTimeout(this.keepalive)
    this.schedule(this.servers.length > 1 ? 0 : undefined)
  }
}

const rid = (): string => randomBytes(8).toString('hex')
