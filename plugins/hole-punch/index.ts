// Finds peers through the rendezvous server and opens direct UDP paths by simultaneous hole punching; birthday-paradox
// probing when one side's NAT is symmetric; the server's relay when no direct path opens, upgraded when one does.
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import * as os from 'node:os'
import { definePlugin, Veto, type CoreServices } from '../../core/plugin'
import { boolean, number, object, optional, validate } from '../../core/schema'
import type { Endpoint, PathKind, Transport } from '../../core/types'
import { decodeJson, encodeJson, formatEndpoint, FrameKind, isEndpoint, parseHostPort, sameEndpoint, type JsonMessage } from '../../core/wire'
import { registrationProof } from '../../server/admission'
import { HELLO_PAD, MAPPING_PAD, parseServerMessage, PING_PAD, type ClientMessage, type NatType, type PeerIntro, type ServerMessage } from '../../server/protocol'
import { decodeRelay, encodeRelay, relayRoom } from '../../server/relay'
import type { RendezvousServer } from '../../server'
import { AuxSocket, MAX_AUX_SOCKETS, openAuxSockets, randomPorts } from './birthday'
import { EmbeddedServerStarter } from './embedded'

const optionsSchema = object({
  /** How often the server registration and every open path are refreshed; under the common 30 s NAT timeout. */
  keepaliveMs: optional(number({ min: 200, max: 120_000, integer: true }), 15_000),
  /** How long to punch before giving up on a direct path. */
  punchTimeoutMs: optional(number({ min: 500, max: 60_000, integer: true }), 10_000),
  /** How long one request to the server waits for its answer before it is sent again. */
  requestTimeoutMs: optional(number({ min: 50, max: 10_000, integer: true }), 500),
  /** Start a server in-process when the configured one is on this machine and none answers. */
  embeddedServer: optional(boolean(), true),
  /** Use the server's relay (when it offers one) for a peer no direct path reaches. */
  relay: optional(boolean(), true),
  /** How long punching may go without a direct path before the relay is asked for (at once when either NAT is symmetric). */
  relayAfterMs: optional(number({ min: 0, max: 60_000, integer: true }), 3_000),
  /** While relayed, how often a new direct attempt is made. */
  upgradeMs: optional(number({ min: 1_000, max: 3_600_000, integer: true }), 30_000),
  /** Sockets the symmetric side opens for birthday punching (0 turns birthday punching off). */
  birthdaySockets: optional(number({ min: 0, max: 512, integer: true }), 256),
  /** Random-port probes per second from the other side; the total is bounded by `punchTimeoutMs`. */
  birthdayRate: optional(number({ min: 10, max: 1_000, integer: true }), 250),
})

export type HolePunchOptions = NonNullable<ReturnType<typeof optionsSchema>>
type Deps = Pick<CoreServices, 'hooks' | 'transports' | 'logger' | 'settings' | 'me' | 'peers'>

/** A direct path: the peer's endpoint and the socket that reaches it (the main one, or a birthday socket). */
interface Path {
  endpoint: Endpoint
  via: Transport
}

/** A peer we were introduced to: where it might be, how its NAT maps, and how we reach it. */
interface PeerState {
  name: string
  /** The tokens of the latest two introductions: both sides may ask for one at the same time. */
  tokens: string[]
  public: Endpoint
  candidates: Endpoint[]
  nat: NatType
  /** The peer's process at the latest introduction (see PeerIntro.instance). */
  instance?: string
  path?: Path
  /** The path went quiet: the first answer of a new introduction may move it. */
  stale: boolean
  lastHeard: number
  lastIntroRequest: number
  relay: 'off' | 'asked' | 'on'
  /** The running direct attempt: its timers and birthday sockets; bumped to cancel it. */
  attempt: number
  /** Introductions asked again because the peer stayed silent (see punch); reset when a path opens or an attempt ends. */
  introRetries: number
  /** When punching began, before any such new introduction: the relay is asked `relayAfterMs` after it. */
  punchingSince: number
  timers: Set<NodeJS.Timeout>
  aux: AuxSocket[]
  upgrade?: NodeJS.Timeout
  /** A running check of a silent path (see checkPath). */
  check?: NodeJS.Timeout
  /** `connect` calls waiting for a path: resolved with its kind, or undefined when none opened. */
  waiters: Array<(path: PathKind | undefined) => void>
}

/** When punches go out, in ms after the introduction: dense at first (the peer punches at the same time), then paced. */
export function punchSchedule(timeoutMs: number): number[] {
  const times = [0, 20, 50, 100, 150, 250, 400, 600, 800]
  for (let t = 1000; t < timeoutMs; t += 250) times.push(t)
  return times.filter((t) => t < timeoutMs)
}

/** Birthday sockets send their punches in batches this large, this far apart, so a cheap router sees no burst. */
const AUX_BATCH = 32
const AUX_BATCH_GAP_MS = 10
/** Each birthday socket punches again this often during an attempt, in case a first punch was lost. */
const AUX_ROUND_MS = 2_000
/** Random-port probes start a little after the introduction, once the other side's sockets have opened mappings. */
const PROBE_DELAY_MS = 50
const PROBE_TICK_MS = 20
/**
 * Sending on a direct path that has been silent this long starts a check: punches the peer answers at once (consent
 * freshness, as RFC 7675 does for WebRTC). No answer to CHECK_PUNCHES of them, CHECK_INTERVAL_MS apart, and the path is
 * lost: the relay takes over, or the next connect looks for a new path. Without it a path that dies while in use (a
 * firewall, a NAT that dropped the mapping) would carry messages into nothing until 3.5 keepalives had passed.
 */
const CHECK_AFTER_MS = 3_000
const CHECK_INTERVAL_MS = 500
const CHECK_PUNCHES = 6
/** A punch under an unknown introduction asks the server for a new one at most this often per name, for this many names. */
/** Silence this long into punching between easy NATs asks for a new introduction, at most INTRO_RETRIES times (see punch). */
const INTRO_RETRY_MS = 1_000
const INTRO_RETRIES = 4
/** A registration whose hello was answered but a later step was not is followed at once by another, this many times. */
const LOST_STEP_RETRIES = 2
/** While offline, registering is retried after 500 ms, then doubling up to 2 s. */
const FIRST_OFFLINE_RETRY_MS = 500
const OFFLINE_RETRY_MS = 2_000
const INTRO_ASK_MS = 1_000
const INTRO_GRACE_MS = 100
const MAX_INTRO_ASKS = 64
/** Server answers that mean "not now" rather than "no": registering is retried, after ~BUSY_RETRY_MS, doubling. */
const BUSY_CODES: ReadonlySet<string> = new Set(['slow_down', 'full'])
const BUSY_RETRIES = 4
const BUSY_RETRY_MS = 250
/** Tries of each registration step after the hello (see admit). */
const STEP_ATTEMPTS = 3

export default definePlugin<HolePunchOptions, Deps>({
  name: 'hole-punch',
  needs: ['transport'],
  provides: ['path', 'rendezvous'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, transports, logger, settings, me, peers }, options) {
    const log = logger.child('hole-punch')
    const states = new Map<string, PeerState>()
    const pending = new Map<string, (message: ServerMessage) => void>()
    const connecting = new Map<string, Promise<PathKind | undefined>>()
    /** Names we asked the server about because they punched us under an introduction we missed: name → when. */
    const introAsked = new Map<string, number>()
    let transport: Transport
    let server: Endpoint
    /** The server's second port, for NAT detection; learned from the cookie at each registration. */
    let serverAlt: Endpoint | undefined
    /** A second port that never answered (a firewall lets only the main one through): not asked again, so that each
     *  registration does not wait for it. */
    let silentAlt: Endpoint | undefined
    let serverRelays = false
    let myNat: NatType = 'unknown'
    let auxOpen = 0
    let registered = false
    /** The server state last reported, so frontends hear each change once (and the first state too). */
    let reported: boolean | undefined
    let stopped = false
    let embedded: RendezvousServer | undefined
    let embeddedStarter: EmbeddedServerStarter | undefined
    let keepalive: NodeJS.Timeout | undefined
    let failedPings = 0
    /** Whether the latest admit() had its hello answered (see register). */
    let helloAnswered = false
    /** Registrations tried since we were last online: the first retries come sooner (see schedule). */
    let offlineTries = 0
    /** Registrations since we were last online that lost a step after the hello was answered; whether the latest did. */
    let lostSteps = 0
    let lostStep = false
    /** This process, as introductions show it to peers: a new one at each start tells them we restarted. */
    const instance = randomBytes(8).toString('hex')

    const sendServer = (message: ClientMessage, to: Endpoint = server) =>
      transport.send(encodeJson(FrameKind.Server, message), to).catch((error) => log.debug(`send to server failed: ${error.message}`))

    const sendProbe = (via: Transport, to: Endpoint, message: JsonMessage) =>
      via.send(encodeJson(FrameKind.Probe, message), to).catch((error) => log.debug(`probe to ${formatEndpoint(to)} failed: ${error.message}`))

    /** Sends a request, resending on timeout; resolves with the reply, or undefined after the last attempt. */
    async function request(message: ClientMessage & { rid: string }, attempts = 3, to: Endpoint = server): Promise<ServerMessage | undefined> {
      for (let attempt = 0; attempt < attempts && !stopped; attempt++) {
        const reply = await new Promise<ServerMessage | undefined>((resolve) => {
          const timer = setTimeout(() => {
            pending.delete(message.rid)
            resolve(undefined)
          }, options.requestTimeoutMs * (attempt + 1))
          pending.set(message.rid, (m) => {
            clearTimeout(timer)
            pending.delete(message.rid)
            resolve(m)
          })
          void sendServer(message, to)
        })
        if (reply) return reply
      }
      return undefined
    }
    const rid = () => randomBytes(8).toString('hex')

    function localEndpoints(): Endpoint[] {
      const port = transport.local().port
      const addresses = Object.values(os.networkInterfaces())
        .flat()
        .filter((i) => i && i.family === 'IPv4' && !i.internal)
        .map((i) => i!.address)
      return [...new Set(addresses)].slice(0, 7).map((address) => ({ address, port }))
    }

    function setOnline(online: boolean, reason?: string, publicEndpoint?: Endpoint) {
      registered = online
      if (online === reported) return
      reported = online
      hooks.server.call({ online, server: settings.server, publicEndpoint, reason })
      log.info(online ? `registered at ${settings.server}` : `server ${settings.server} lost: ${reason}`)
    }

    /**
     * hello → cookie, register → challenge, prove → registered: the server checks our address, then our key. The cookie
     * says where the server sees us and where its second port is, so the NAT type is learned in between and registered.
     */
    async function admit(): Promise<ServerMessage | undefined> {
      helloAnswered = false
      const cookie = await request({ t: 'hello', rid: rid(), pad: HELLO_PAD }, 2)
      if (cookie?.t !== 'cookie') return log.debug('hello unanswered'), cookie
      helloAnswered = true
      serverAlt = cookie.altPort ? { address: server.address, port: cookie.altPort } : undefined
      if (cookie.public) {
        const detected = await detectNat(cookie.public)
        if (detected !== myNat) log.info(`NAT type: ${detected}`, { public: formatEndpoint(cookie.public) })
        myNat = detected
      }
      // The server answered the hello, so it is there: the later steps get a third try (500, 1000, 1500 ms) before the
      // whole registration starts over, since under 20 % loss two tries of a step both fail one time in eight.
      const challenge = await request({ t: 'register', rid: rid(), cookie: cookie.cookie, name: me.name, key: me.publicKey, local: localEndpoints(), nat: myNat, instance }, STEP_ATTEMPTS)
      if (challenge?.t !== 'challenge') return log.debug('register unanswered', { reply: challenge }), challenge
      const proven = await request({ t: 'prove', rid: rid(), sig: me.sign(registrationProof(challenge.nonce, me.name)).toString('base64') }, STEP_ATTEMPTS)
      if (proven?.t !== 'registered') log.debug('prove unanswered', { reply: proven })
      return proven
    }

    async function register(): Promise<boolean> {
      let reply = await admit()
      // The server answered our hello, so a later step that went unanswered was lost on the way, request or answer
      // (four round trips in a row: under 20 % loss one registration in three loses a step twice): the next
      // registration starts at once (see schedule), not at the next offline retry. Not here: the client's start
      // waits for this call, and what peers send us meanwhile is shown only once it is over.
      lostStep = reply === undefined && helloAnswered
      if (lostStep) lostSteps++
      for (let busy = 0; reply?.t === 'error' && BUSY_CODES.has(reply.code) && busy < BUSY_RETRIES && !stopped; busy++) {
        // Busy is not a refusal (the server's limit per address, or its table of pending registrations): clients behind
        // one NAT share an address, so each waits a random while and they come back spread out, not together again.
        log.debug(`server busy (${reply.message}); registering again shortly`)
        await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS * 2 ** busy * (0.5 + Math.random())))
        reply = await admit()
      }
      if (reply?.t === 'registered') {
        failedPings = 0
        offlineTries = 0
        lostSteps = 0
        serverRelays = reply.relay === true
        setOnline(true, undefined, reply.public)
        // A new registration voids relay consent on the server (it may have restarted): ask again where we used it.
        for (const state of states.values()) if (state.relay !== 'off') void askRelay(state, true)
        return true
      }
      if (reply?.t === 'error' && BUSY_CODES.has(reply.code)) {
        setOnline(false, `the server is busy (${reply.message}); trying again`)
        return false
      }
      if (reply?.t === 'error') {
        // A refusal is final for this attempt and the user must see it (a taken name, a rejected key).
        hooks.problem.call({ source: 'hole-punch', code: 'registration-refused', message: `the server refused the registration: ${reply.message}` })
        setOnline(false, reply.message)
        return false
      }
      if (options.embeddedServer && (await isThisMachine(parseHostPort(settings.server).host)) && !embedded) {
        const attempt = await (embeddedStarter ??= new EmbeddedServerStarter(settings.server, log)).start()
        if (attempt.kind === 'started') embedded = attempt.server
        if (attempt.kind === 'started' || attempt.kind === 'ask-again') return register()
        if (attempt.kind === 'held') {
          if (attempt.tell) hooks.problem.call({ source: 'hole-punch', message: attempt.tell })
          setOnline(false, attempt.reason)
          return false
        }
      }
      setOnline(false, 'no answer')
      return false
    }

    /**
     * Asks the server's second port which public endpoint it sees from our socket. The same endpoint as the main port saw
     * means our NAT maps independently of the destination (or there is none); another port means a symmetric NAT.
     */
    async function detectNat(seenByMain: Endpoint): Promise<NatType> {
      if (!serverAlt || (silentAlt && sameEndpoint(serverAlt, silentAlt))) return 'unknown'
      const reply = await request({ t: 'mapping', rid: rid(), pad: MAPPING_PAD }, 2, serverAlt)
      if (reply?.t !== 'mapped') {
        log.info('the server\'s second port does not answer: NAT type unknown', { port: serverAlt.port })
        silentAlt = serverAlt
        return 'unknown'
      }
      return sameEndpoint(reply.public, seenByMain) ? 'eim' : 'symmetric'
    }

    async function tick() {
      if (stopped) return
      if (!registered) await register()
      else {
        const reply = await request({ t: 'ping', rid: rid(), pad: PING_PAD }, 1)
        if (reply?.t === 'pong') failedPings = 0
        else if (reply?.t === 'error' && reply.code === 'not_registered') await register() // the server restarted, or our NAT moved us
        else if (++failedPings >= 2) {
          setOnline(false, 'keepalive unanswered')
          await register()
        }
      }
      const now = Date.now()
      for (const state of states.values()) {
        if (!state.path) continue
        const quiet = now - state.lastHeard
        if (quiet > options.keepaliveMs * 3.5) {
          lose(state, 'timed out')
          continue
        }
        // Two keepalives missed: a NAT rebooted or gave someone a new port. A fresh introduction carries the
        // endpoints the server sees now, and both sides punch again; the old path stays until a new one answers.
        if (quiet > options.keepaliveMs * 2 && registered && now - state.lastIntroRequest > options.keepaliveMs * 2) {
          state.stale = true
          void reintroduce(state)
        }
        void sendProbe(state.path.via, state.path.endpoint, { t: 'keepalive', from: me.name, to: state.name, token: state.tokens[0] })
      }
    }

    function schedule() {
      if (stopped) return
      // While offline, try the server more often than the steady keepalive: soon at first (a lost hello is more likely
      // than a server gone), then every OFFLINE_RETRY_MS.
      const lost = lostStep && lostSteps <= LOST_STEP_RETRIES
      const delay = registered ? options.keepaliveMs : lost ? 0 : Math.min(options.keepaliveMs, OFFLINE_RETRY_MS, FIRST_OFFLINE_RETRY_MS * 2 ** offlineTries++)
      keepalive = setTimeout(() => void tick().finally(schedule), delay)
    }

    /** Asks the server to introduce us again: both sides get fresh candidates and punch at once. */
    async function reintroduce(state: PeerState) {
      state.lastIntroRequest = Date.now()
      const reply = await request({ t: 'connect', rid: rid(), to: state.name })
      if (reply?.t === 'intro') handleIntro(reply.peer, reply.token)
      else if (reply?.t === 'error' && reply.code === 'not_registered' && registered) {
        setOnline(false, 'the server forgot us (it restarted)')
        if (await register()) void reintroduce(state)
      }
    }

    /** The peer's process is gone: its relay and the probes still scheduled for it (random ports of its NAT, which would
     *  only reach whoever comes next) go too, and whoever waits for a path to it is answered. */
    function leave(state: PeerState) {
      stopAttempt(state)
      clearTimeout(state.upgrade)
      state.relay = 'off'
      settle(state, undefined)
    }

    function lose(state: PeerState, reason: string) {
      if (!state.path) {
        // Relayed only, and the peer left (the server tells us, as no bye crosses the relay): the relay leads nowhere now.
        if (reason !== 'left' || state.relay === 'off') return
        leave(state)
        peers.update(state.name, { path: undefined, online: false })
        return hooks.peerLost.call(state.name, reason)
      }
      const { via } = state.path
      state.path = undefined
      state.stale = false
      if (via instanceof AuxSocket) closeAux([via])
      if (reason === 'left') leave(state)
      if (state.relay === 'on') {
        // The relay still joins us: fall back to it rather than lose the peer, and keep trying for direct.
        peers.update(state.name, { path: 'relay', online: true })
        hooks.peerConnected.call(state.name, 'relay')
        scheduleUpgrade(state)
        return
      }
      peers.update(state.name, { path: undefined, online: reason !== 'left' })
      hooks.peerLost.call(state.name, reason)
    }

    function handleIntro(intro: PeerIntro, token: string): PeerState {
      const existing = states.get(intro.name)
      // A new introduction replaces the old candidates; an open path stays until the new one is proven.
      const candidates = dedupe([intro.public, ...intro.local].filter((e) => !sameEndpoint(e, transport.local())))
      const state: PeerState = existing ?? {
        name: intro.name, tokens: [], public: intro.public, candidates, nat: 'unknown', stale: false, lastHeard: 0, lastIntroRequest: 0,
        relay: 'off', attempt: 0, introRetries: 0, punchingSince: 0, timers: new Set(), aux: [], waiters: [],
      }
      // The peer restarted or its NAT moved it: its old path may lead nowhere, so the first answer from the new
      // candidates moves it (until then the old one is kept, in case it still works).
      const moved = existing !== undefined && (intro.instance !== existing.instance || !sameEndpoint(intro.public, existing.public))
      if (moved && existing.path) state.stale = true
      // The retries of new introductions spent on the old process (one that quit and whose goodbye was lost) say
      // nothing about the new one: it gets its own, or its lost copy would wait for the whole punch timeout (10 s).
      if (moved) state.introRetries = 0
      state.tokens = [token, ...state.tokens.filter((t) => t !== token)].slice(0, 2)
      state.public = intro.public
      state.candidates = candidates
      state.nat = intro.nat ?? 'unknown'
      state.instance = intro.instance
      states.set(intro.name, state)
      const info = peers.update(intro.name, { publicKey: intro.key, online: true, instance: intro.instance })
      hooks.peerDiscovered.call(info)
      // A path that works to the same process needs no punching; a fresh one, or one in doubt, does.
      if (!state.path || state.stale) punch(state)
      return state
    }

    const later = (state: PeerState, attempt: number, ms: number, fn: () => void) => {
      const timer = setTimeout(() => {
        state.timers.delete(timer)
        if (!stopped && state.attempt === attempt) fn()
      }, ms)
      state.timers.add(timer)
    }

    /** One direct attempt: the punch schedule on every candidate, birthday probing if one NAT is symmetric, the relay if needed. */
    function punch(state: PeerState) {
      stopAttempt(state)
      const attempt = state.attempt
      const token = state.tokens[0]
      const punchMessage = { t: 'punch', from: me.name, to: state.name, token }
      for (const t of punchSchedule(options.punchTimeoutMs)) {
        later(state, attempt, t, () => {
          for (const candidate of state.candidates) void sendProbe(transport, candidate, punchMessage)
        })
      }
      later(state, attempt, options.punchTimeoutMs, () => finishAttempt(state))

      if (state.introRetries === 0) state.punchingSince = Date.now()
      const iAmSymmetric = myNat === 'symmetric'
      const peerSymmetric = state.nat === 'symmetric'
      if (!iAmSymmetric && !peerSymmetric && state.introRetries < INTRO_RETRIES) {
        // Between easy NATs a path opens in tens of ms. Silence means the peer's copy of the introduction was probably
        // lost, and our punches stop at its NAT, which has sent nothing our way: ask again, both sides get it anew.
        // (Not with a symmetric NAT: birthday probing takes seconds, and a new introduction would start it over.)
        // 1 s, then 1, 2, 4 s: the later ones for a peer whose new process registers while we punch its old one (which
        // quit and whose goodbye was lost), when both copies of the server's introduction of the new one were lost.
        const retryIntro = () =>
          later(state, attempt, INTRO_RETRY_MS * 2 ** Math.max(0, state.introRetries - 1), () => {
            if (state.path && !state.stale) return
            // Not registered yet (our own registration lost a step, as under loss): the server could not answer now, so
            // ask once it can, within this attempt, rather than leave the peer's lost copy to the punch timeout (10 s).
            if (!registered) return retryIntro()
            state.introRetries++
            log.debug(`${state.name} silent into punching: asking for a new introduction`, { retry: state.introRetries })
            void reintroduce(state)
          })
        retryIntro()
      }
      if (iAmSymmetric && !peerSymmetric && options.birthdaySockets > 0) void openBirthdaySockets(state, attempt, punchMessage)
      if (peerSymmetric && !iAmSymmetric && options.birthdaySockets > 0) probeRandomPorts(state, attempt, punchMessage)
      // With a symmetric NAT on either side a direct path may take seconds (birthday) or never open (both): the relay
      // carries the first messages at once and the path upgrades when punching succeeds. Easy pairs wait `relayAfterMs`.
      if (iAmSymmetric || peerSymmetric) void askRelay(state)
      else later(state, attempt, Math.max(0, options.relayAfterMs - (Date.now() - state.punchingSince)), () => void askRelay(state))
      log.debug(`punching ${state.name}`, { candidates: state.candidates.map(formatEndpoint), me: myNat, peer: state.nat })
    }

    /** Symmetric side: many sockets, each with its own NAT mapping towards the peer's public endpoint. */
    async function openBirthdaySockets(state: PeerState, attempt: number, punchMessage: JsonMessage) {
      const count = Math.min(options.birthdaySockets, MAX_AUX_SOCKETS - auxOpen)
      if (count <= 0) return log.warn(`no birthday sockets for ${state.name}: ${auxOpen} already open`)
      auxOpen += count
      const sockets = await openAuxSockets(count, (bytes, from, via) => transports.receive({ bytes, from, transport: via }))
      auxOpen -= count - sockets.length
      if (stopped || state.attempt !== attempt || state.path?.via === transport) return closeAux(sockets)
      state.aux.push(...sockets)
      const round = () => {
        sockets.forEach((socket, i) => {
          later(state, attempt, Math.floor(i / AUX_BATCH) * AUX_BATCH_GAP_MS, () => {
            if (!socket.isClosed) void sendProbe(socket, state.public, punchMessage)
          })
        })
      }
      for (let t = 0; t < options.punchTimeoutMs; t += AUX_ROUND_MS) later(state, attempt, t, round)
      log.debug(`birthday: ${sockets.length} sockets punching ${state.name}`, { public: formatEndpoint(state.public) })
    }

    /** The other side: random ports on the symmetric peer's public address, paced, until a path opens or the attempt ends. */
    function probeRandomPorts(state: PeerState, attempt: number, punchMessage: JsonMessage) {
      const perTick = Math.max(1, Math.round((options.birthdayRate * PROBE_TICK_MS) / 1000))
      const ticks = Math.floor((options.punchTimeoutMs - PROBE_DELAY_MS) / PROBE_TICK_MS)
      const ports = randomPorts(perTick * ticks)
      const bytes = encodeJson(FrameKind.Probe, punchMessage)
      for (let tick = 0; tick < ticks; tick++) {
        later(state, attempt, PROBE_DELAY_MS + tick * PROBE_TICK_MS, () => {
          if (state.path && !state.stale) return
          for (const port of ports.slice(tick * perTick, (tick + 1) * perTick)) {
            void transport.send(bytes, { address: state.public.address, port }).catch(() => undefined)
          }
        })
      }
      log.debug(`birthday: probing ${ports.length} random ports of ${state.name}`, { address: state.public.address })
    }

    /** Cancels the running attempt's timers and closes its birthday sockets, except the one a path uses. */
    function stopAttempt(state: PeerState) {
      state.attempt++
      for (const timer of state.timers) clearTimeout(timer)
      state.timers.clear()
      const keep = state.path?.via
      closeAux(state.aux.filter((s) => s !== keep))
      state.aux = state.aux.filter((s) => s === keep)
    }

    function closeAux(sockets: AuxSocket[]) {
      for (const socket of sockets) {
        if (socket.isClosed) continue
        void socket.close()
        auxOpen--
      }
    }

    function finishAttempt(state: PeerState) {
      stopAttempt(state)
      state.introRetries = 0
      if (state.path && !state.stale) return
      if (state.relay === 'on') scheduleUpgrade(state)
      else settle(state, undefined)
    }

    function settle(state: PeerState, path: PathKind | undefined) {
      for (const waiter of state.waiters.splice(0)) waiter(path)
    }

    function openPath(state: PeerState, endpoint: Endpoint, via: Transport) {
      state.lastHeard = Date.now()
      if (state.path && sameEndpoint(state.path.endpoint, endpoint) && state.path.via === via && !state.stale) return
      const wasDirect = Boolean(state.path)
      const old = state.path?.via
      state.path = { endpoint, via }
      state.stale = false
      state.introRetries = 0
      if (old instanceof AuxSocket && old !== via) closeAux([old])
      // The winner is known: the other birthday sockets and the remaining punches go at once.
      stopAttempt(state)
      clearTimeout(state.upgrade)
      peers.update(state.name, { path: 'direct', online: true })
      log.info(`direct path to ${state.name}`, { via: formatEndpoint(endpoint), socket: via === transport ? 'main' : 'birthday' })
      settle(state, 'direct')
      if (!wasDirect) hooks.peerConnected.call(state.name, 'direct')
    }

    /** Punches the peer on its silent path until it answers (anything heard from it counts) or CHECK_PUNCHES went unanswered. */
    function checkPath(state: PeerState) {
      const path = state.path
      if (state.check || !path) return
      const since = Date.now()
      let punches = 0
      const step = () => {
        state.check = undefined
        if (stopped || state.path !== path || state.lastHeard >= since) return
        if (punches === CHECK_PUNCHES) {
          log.info(`direct path to ${state.name} stopped answering`, { via: formatEndpoint(path.endpoint) })
          return lose(state, 'the path stopped answering')
        }
        // One punch unanswered: ask the server where the peer is now, in case it restarted or moved (its answer, and the
        // peer's, move the path); the punches go on meanwhile, in case the old path was only slow.
        if (punches === 1 && registered) {
          state.stale = true
          void reintroduce(state)
        }
        punches++
        void sendProbe(path.via, path.endpoint, { t: 'punch', from: me.name, to: state.name, token: state.tokens[0] })
        state.check = setTimeout(step, CHECK_INTERVAL_MS)
      }
      step()
    }

    /** Asks the server to relay to and from a peer; both must ask before frames flow. `again` renews lost consent. */
    async function askRelay(state: PeerState, again = false) {
      if (!options.relay || !serverRelays || (state.relay !== 'off' && !again)) return
      if (state.path && !state.stale && !again) return
      if (state.relay === 'off') state.relay = 'asked'
      const reply = await request({ t: 'relay', rid: rid(), to: state.name })
      if (reply?.t === 'relay') {
        if (reply.ready) relayReady(state)
        return
      }
      if (reply?.t === 'error') log.info(`no relay to ${state.name}: ${reply.message}`)
      state.relay = 'off'
      if (!state.path && state.timers.size === 0) settle(state, undefined)
    }

    function relayReady(state: PeerState) {
      const first = state.relay !== 'on'
      state.relay = 'on'
      if (state.path && !state.stale) return
      // While a direct path is in doubt it is still the path: losing it announces the relay (see lose).
      if (first && !state.path) {
        peers.update(state.name, { path: 'relay', online: true })
        log.info(`relayed path to ${state.name}`)
        hooks.peerConnected.call(state.name, 'relay')
      }
      settle(state, 'relay')
      if (state.timers.size === 0) scheduleUpgrade(state)
    }

    /** While relayed, one side (the smaller name, so the two do not cross) asks for a new introduction now and then. */
    function scheduleUpgrade(state: PeerState) {
      clearTimeout(state.upgrade)
      if (stopped || state.path || state.relay !== 'on' || me.name > state.name) return
      if (myNat === 'symmetric' && state.nat === 'symmetric') return // no direct path can open between two of them
      state.upgrade = setTimeout(() => {
        if (!stopped && !state.path && state.relay === 'on' && registered) void reintroduce(state)
      }, options.upgradeMs)
    }

    /**
     * A punch from a name we hold no introduction for (or for an older or newer one), or the server saying that name asked
     * for the relay with us: the server introduced us both, and our copy was lost (a datagram like any other). Ask for a fresh one, which both sides get with a new token; without
     * this the peer punches into nothing until its attempt ends, and the pair waits for its next retry (seconds).
     * Our copy may only be late (the peer's first punch can overtake it): asked after INTRO_GRACE_MS if still missing.
     * At most once per INTRO_ASK_MS per name, and only while registered: a stranger's punches cost one request a second.
     */
    function missedIntro(name: string, to: unknown, known: () => boolean) {
      if (to !== me.name || !registered || name === me.name) return
      const now = Date.now()
      if (now - (introAsked.get(name) ?? -Infinity) < INTRO_ASK_MS) return
      if (introAsked.size >= MAX_INTRO_ASKS) for (const [n, at] of introAsked) if (now - at >= INTRO_ASK_MS) introAsked.delete(n)
      if (introAsked.size >= MAX_INTRO_ASKS) return
      introAsked.set(name, now)
      setTimeout(() => {
        if (stopped || !registered || known()) return
        log.debug(`heard from ${name} under an introduction we did not get: asking for a new one`)
        void request({ t: 'connect', rid: rid(), to: name }).then((reply) => {
          if (reply?.t === 'intro') handleIntro(reply.peer, reply.token)
        })
      }, INTRO_GRACE_MS)
    }

    function handleProbe(message: JsonMessage, from: Endpoint, via: Transport) {
      const state = typeof message.from === 'string' ? states.get(message.from) : undefined
      if (message.t === 'punch' && typeof message.from === 'string' && typeof message.token === 'string' && !state?.tokens.includes(message.token)) {
        const [from, token] = [message.from, message.token]
        // Not while we punch the peer ourselves: a punch under an older token is a late one from an attempt it gave up.
        if (state && (state.path || state.timers.size > 0)) return
        return missedIntro(from, message.to, () => Boolean(states.get(from)?.tokens.includes(token)))
      }
      if (!state || message.to !== me.name || typeof message.token !== 'string' || !state.tokens.includes(message.token)) return
      const reply = (t: string) => sendProbe(via, from, { t, from: me.name, to: state.name, token: message.token })
      const open = !state.path || state.stale
      switch (message.t) {
        case 'punch':
          void reply('punch-ack')
          // A punch that got in came through both NATs' mappings, and our answer goes back through the same ones: the
          // path is open now, before any ack, so a handshake the peer sends right after its ack finds it.
          if (open) openPath(state, from, via)
          else if (sameEndpoint(state.path!.endpoint, from)) state.lastHeard = Date.now()
          return
        case 'punch-ack':
          // The first candidate that answers wins; later answers from other candidates only show the path is alive.
          if (open) return openPath(state, from, via)
          if (sameEndpoint(state.path!.endpoint, from)) state.lastHeard = Date.now()
          return
        case 'keepalive':
          if (state.path && (!sameEndpoint(state.path.endpoint, from) || state.stale)) openPath(state, from, via) // the peer's NAT gave it a new port
          state.lastHeard = Date.now()
          return
        case 'bye':
          return lose(state, 'left')
      }
    }

    const fromServer = (from: Endpoint) => sameEndpoint(from, server) || (serverAlt !== undefined && sameEndpoint(from, serverAlt))

    function handleServer(message: ServerMessage) {
      if (message.rid && pending.has(message.rid)) return pending.get(message.rid)!(message)
      if (message.t === 'intro') return void handleIntro(message.peer, message.token)
      if (message.t === 'left') {
        const state = states.get(message.peer)
        return state && lose(state, 'left')
      }
      if (message.t === 'relay') {
        const state = states.get(message.peer)
        // The peer asked for the relay after an introduction whose copy we did not get: ask for it again.
        if (!state) return missedIntro(message.peer, me.name, () => states.has(message.peer))
        if (message.ready) relayReady(state)
        // The peer asked: consent, so that frames can flow as soon as it needs them, even while our own direct path
        // to it looks fine (the peer asking means it cannot reach us on it).
        else void askRelay(state, true)
      }
    }

    hooks.receive.tap('hole-punch', (datagram) => {
      const { frame } = datagram
      if (!frame) return undefined
      if (frame.kind === FrameKind.Server) {
        if (!fromServer(datagram.from)) return true // only our server speaks this kind to us
        const json = decodeJson(frame.body)
        const message = json && parseServerMessage(json)
        if (message) handleServer(message)
        return true
      }
      if (frame.kind === FrameKind.Relay) {
        if (!sameEndpoint(datagram.from, server)) return true
        const relayed = decodeRelay(frame.body)
        const state = relayed && states.get(relayed.name)
        // Re-injected as if it arrived on the socket: rsa opens it as any HANDSHAKE or DATA frame, and checks who sent it.
        if (relayed && state && state.relay !== 'off') {
          queueMicrotask(() => transports.receive({ bytes: Buffer.from(relayed.frame), from: datagram.from, transport: datagram.transport }))
        }
        return true
      }
      if (frame.kind === FrameKind.Probe) {
        const json = decodeJson(frame.body)
        if (json) handleProbe(json, datagram.from, datagram.transport)
        return true
      }
      // Any other frame from a peer's path proves the path is alive.
      for (const state of states.values()) {
        if (state.path && state.path.via === datagram.transport && sameEndpoint(state.path.endpoint, datagram.from)) state.lastHeard = Date.now()
      }
      return undefined
    })

    hooks.start.tapPromise('hole-punch', async () => {
      transport = transports.primary()
      const { host, port } = parseHostPort(settings.server)
      server = { address: (await lookup(host, { family: 4 })).address, port }
      await register()
      schedule()
    })

    hooks.connect.tapPromise('hole-punch', async (peer) => {
      const known = states.get(peer)
      if (known?.path) return 'direct'
      if (known?.relay === 'on') return 'relay'
      let attempt = connecting.get(peer)
      if (!attempt) {
        attempt = (async () => {
          const reply = await request({ t: 'connect', rid: rid(), to: peer })
          if (reply?.t === 'error') throw new Veto(reply.message)
          if (reply?.t !== 'intro') throw new Veto(`the server did not answer the request to reach ${peer}`)
          const state = handleIntro(reply.peer, reply.token)
          if (state.path) return 'direct'
          if (state.relay === 'on') return 'relay'
          return new Promise<PathKind | undefined>((resolve) => state.waiters.push(resolve))
        })().finally(() => connecting.delete(peer))
        connecting.set(peer, attempt)
      }
      return attempt
    })

    hooks.send.tapPromise('hole-punch', async (packet) => {
      const state = states.get(packet.peer)
      if (state?.path) {
        if (Date.now() - state.lastHeard > CHECK_AFTER_MS) checkPath(state)
        await state.path.via.send(packet.bytes, state.path.endpoint)
        return true
      }
      if (state?.relay !== 'on') return undefined
      if (packet.bytes.length > relayRoom(packet.peer)) throw new Veto(`a frame of ${packet.bytes.length} bytes does not fit the relay to ${packet.peer}`)
      await transport.send(encodeRelay(packet.peer, packet.bytes), server)
      return true
    })

    hooks.listPeers.tapPromise('hole-punch', async (known) => {
      const reply = await request({ t: 'list', rid: rid() })
      if (reply?.t !== 'peers') return known
      const online = new Set(reply.peers)
      const merged = known.map((p) => ({ ...p, online: online.has(p.name) }))
      for (const name of online) if (!merged.some((p) => p.name === name)) merged.push({ name, online: true })
      return merged.sort((a, b) => a.name.localeCompare(b.name))
    })

    hooks.stop.tapPromise('hole-punch', async () => {
      stopped = true
      clearTimeout(keepalive)
      for (const state of states.values()) {
        stopAttempt(state)
        clearTimeout(state.upgrade)
        clearTimeout(state.check)
        settle(state, undefined)
        if (state.path) await sendProbe(state.path.via, state.path.endpoint, { t: 'bye', from: me.name, to: state.name, token: state.tokens[0] })
        closeAux(state.aux)
        if (state.path?.via instanceof AuxSocket) closeAux([state.path.via])
      }
      if (transport && server && registered) await sendServer({ t: 'bye' })
      await embedded?.close()
    })
  },
})

function dedupe(endpoints: Endpoint[]): Endpoint[] {
  return endpoints.filter((e, i) => isEndpoint(e) && endpoints.findIndex((o) => sameEndpoint(o, e)) === i)
}

/** Whether a host names this machine (loopback or one of its interface addresses). */
async function isThisMachine(host: string): Promise<boolean> {
  const address = host === 'localhost' ? '127.0.0.1' : (await lookup(host, { family: 4 }).catch(() => undefined))?.address
  if (!address) return false
  if (address.startsWith('127.') || address === '0.0.0.0') return true
  return Object.values(os.networkInterfaces()).flat().some((i) => i?.address === address)
}
