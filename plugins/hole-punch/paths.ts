// The direct paths to peers, as a state machine: introductions, punching every candidate, birthday probing, the relay
// decision, path checks, keepalives and expiry, and the send budgets. Pure and clock-driven: no sockets, no timers.
// Time comes from `clock`, what must happen leaves through `effects`, and the owner calls `tick()` at `nextDeadline()`
// (it hears of an earlier deadline through `effects.deadline`). A socket is an opaque `Via`; `main` is the client's own.
import type { Endpoint, PathKind } from '../../core'
import { formatEndpoint, sameEndpoint, type NatType } from '../../protocol'
import { probeToken, type Probe, type ProbeType } from '../../protocol'
import { SendBudget } from './send-policy'
import { randomPorts } from './birthday'

export interface PathOptions {
  keepaliveMs: number
  punchTimeoutMs: number
  relay: boolean
  relayAfterMs: number
  upgradeMs: number
  birthdaySockets: number
  birthdayRate: number
}

/** A peer as an introduction describes it; `candidates` are the endpoints to punch (public first, then local ones). */
export interface Introduction {
  name: string
  token: string
  public: Endpoint
  candidates: Endpoint[]
  nat: NatType
  instance?: string
}

/** What the owner must do for the peer directory and the hooks when a path changes. */
export type PathEvent<Via> =
  | { t: 'direct'; name: string; endpoint: Endpoint; via: Via; first: boolean }
  | { t: 'relay'; name: string }
  | { t: 'lost'; name: string; reason: string; online: boolean }

export interface PathEffects<Via> {
  /** Sends one probe of type `t` under `token`, about peer `name`, to `to` through `via`. */
  sendProbe(via: Via, to: Endpoint, name: string, token: string, t: ProbeType): void
  /** Sends one punch to many ports of `address` through the main socket (birthday probing): the same punch for the
   *  whole of attempt `attempt`, so that only the first to arrive is fresh. */
  sendPortProbes(name: string, attempt: number, token: string, address: string, ports: number[]): void
  /** Ask the server to introduce us to `name` again (both sides get fresh candidates and a new token). */
  reintroduce(name: string): void
  /** Ask the server for an introduction we seem to have missed (a peer punched us under a token we do not hold). */
  askIntro(name: string): void
  /** Ask the server to relay to and from `name`; answer with `relayAnswer`. */
  askRelay(name: string): void
  /** Open birthday sockets for attempt `attempt` to `name`; hand them over with `auxOpened`. */
  openAux(name: string, attempt: number): void
  closeAux(sockets: Via[]): void
  path(event: PathEvent<Via>): void
  /** The earliest deadline moved earlier: re-arm the timer for `tick()`. */
  deadline(at: number): void
  log(level: 'debug' | 'info', message: string, fields?: Record<string, unknown>): void
}

interface Scheduled {
  at: number
  seq: number
  run: () => void
  cancelled: boolean
  /** The per-state set holding it (so cancelling the state's attempt or the whole state drops it). */
  owner?: Set<Scheduled>
}

interface PeerState<Via> {
  name: string
  /** The tokens of the latest two introductions: both sides may ask for one at the same time. */
  tokens: string[]
  /** The highest probe sequence number seen from the peer under each token (see probe.ts). */
  seqs: Map<string, number>
  public: Endpoint
  candidates: Endpoint[]
  nat: NatType
  instance?: string
  path?: { endpoint: Endpoint; via: Via }
  /** The path went quiet: the first answer of a new introduction may move it. */
  stale: boolean
  lastHeard: number
  lastIntroRequest: number
  relay: 'off' | 'asked' | 'on'
  /** The running direct attempt; bumped to cancel it. */
  attempt: number
  /** Introductions asked again because the peer stayed silent (see punch); reset when a path opens or an attempt ends. */
  introRetries: number
  /** When punching began, before any such new introduction: the relay is asked `relayAfterMs` after it. */
  punchingSince: number
  /** The running attempt's scheduled steps; empty when no attempt runs. */
  attemptSteps: Set<Scheduled>
  /** The next direct attempt while relayed, and a running check of a silent path. */
  upgrade: Set<Scheduled>
  check: Set<Scheduled>
  aux: Via[]
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
export const CHECK_AFTER_MS = 3_000
const CHECK_INTERVAL_MS = 500
const CHECK_PUNCHES = 6
/** Silence this long into punching between easy NATs asks for a new introduction, at most INTRO_RETRIES times (see punch). */
const INTRO_RETRY_MS = 1_000
const INTRO_RETRIES = 4
/** A punch under an unknown introduction asks the server for a new one at most this often per name, for this many names. */
const INTRO_ASK_MS = 1_000
const INTRO_GRACE_MS = 100
const MAX_INTRO_ASKS = 64
/**
 * Names held at most. The peer directory forgets names past its 1,024 and the owner calls `forget` for each; this bound
 * holds on its own too, whatever a server introduces: past it the name introduced longest ago without a path or the
 * relay goes, with its scheduled steps (twice the directory's, so that the directory's choice comes first).
 */
export const MAX_PEER_STATES = 2_048

export class PathMachine<Via> {
  private readonly states = new Map<string, PeerState<Via>>()
  /** Names we asked the server about because they punched us under an introduction we missed: name → when. */
  private readonly introAsked = new Map<string, number>()
  /** The steps scheduled, in a binary heap by time; cancelled ones are dropped when popped or when the heap compacts. */
  private heap: Scheduled[] = []
  private live = 0
  private seq = 0
  private stopped = false
  private registered = false
  private serverRelays = false
  private myNat: NatType = 'unknown'
  /** What we may still send to addresses that never proved they are a peer (see SendBudget). */
  private readonly budget: SendBudget

  constructor(
    private readonly me: string,
    /** The client's own socket: a path on any other is on a birthday socket. */
    private readonly main: Via,
    private readonly options: PathOptions,
    private readonly effects: PathEffects<Via>,
    private readonly clock: () => number = Date.now,
    budget?: SendBudget,
  ) {
    this.budget = budget ?? new SendBudget(undefined, clock)
  }

  /** Names held. */
  get size(): number {
    return this.states.size
  }

  /** Steps scheduled and not cancelled (each would be a timer in a timer-driven design). */
  get scheduled(): number {
    return this.live
  }

  has(name: string): boolean {
    return this.states.has(name)
  }

  /** The registration's state: steps that need the server wait for it; a new registration renews relay consent. */
  setRegistered(registered: boolean, relays: boolean, renewed: boolean): void {
    this.registered = registered
    this.serverRelays = relays
    // A new registration voids relay consent on the server (it may have restarted): ask again where we used it.
    if (renewed) for (const state of this.states.values()) if (state.relay !== 'off') this.askRelay(state, true)
  }

  setNat(nat: NatType): void {
    this.myNat = nat
  }

  /** A new introduction replaces the old candidates; an open path stays until the new one is proven. */
  introduce(intro: Introduction): void {
    if (this.stopped) return
    const existing = this.states.get(intro.name)
    if (!existing && this.states.size >= MAX_PEER_STATES) this.evict()
    const state: PeerState<Via> = existing ?? {
      name: intro.name,
      tokens: [],
      seqs: new Map(),
      public: intro.public,
      candidates: [],
      nat: 'unknown',
      stale: false,
      lastHeard: 0,
      lastIntroRequest: 0,
      relay: 'off',
      attempt: 0,
      introRetries: 0,
      punchingSince: 0,
      attemptSteps: new Set(),
      upgrade: new Set(),
      check: new Set(),
      aux: [],
      waiters: [],
    }
    // The peer restarted or its NAT moved it: its old path may lead nowhere, so the first answer from the new
    // candidates moves it (until then the old one is kept, in case it still works).
    const moved =
      existing !== undefined && (intro.instance !== existing.instance || !sameEndpoint(intro.public, existing.public))
    if (moved && existing.path) state.stale = true
    // The retries of new introductions spent on the old process (one that quit and whose goodbye was lost) say
    // nothing about the new one: it gets its own, or its lost copy would wait for the whole punch timeout (10 s).
    if (moved) state.introRetries = 0
    state.tokens = [intro.token, ...state.tokens.filter((t) => t !== intro.token)].slice(0, 2)
    for (const known of state.seqs.keys()) if (!state.tokens.includes(known)) state.seqs.delete(known)
    state.public = intro.public
    state.candidates = intro.candidates
    state.nat = intro.nat
    state.instance = intro.instance
    // Re-inserted: the table's order is the order of last introduction, which `evict` reads.
    this.states.delete(intro.name)
    this.states.set(intro.name, state)
    // A path that works to the same process needs no punching; a fresh one, or one in doubt, does.
    if (!state.path || state.stale) this.punch(state)
  }

  /** How `connect` stands for `name` now: a path, the relay, or nothing yet. */
  reach(name: string): PathKind | undefined {
    const state = this.states.get(name)
    if (state?.path) return 'direct'
    if (state?.relay === 'on') return 'relay'
    return undefined
  }

  /** Resolves once a path or the relay opens to `name`, or with undefined once its attempt ends without one. */
  waitForPath(name: string): Promise<PathKind | undefined> {
    const state = this.states.get(name)
    if (!state) return Promise.resolve(undefined)
    const now = this.reach(name)
    if (now) return Promise.resolve(now)
    return new Promise((resolve) => state.waiters.push(resolve))
  }

  /** Where a frame to `name` goes: its direct path (checked when it has been silent), the relay, or nowhere known. */
  route(name: string): { t: 'direct'; endpoint: Endpoint; via: Via } | { t: 'relay' } | undefined {
    const state = this.states.get(name)
    if (state?.path) {
      if (this.clock() - state.lastHeard > CHECK_AFTER_MS) this.checkPath(state)
      return { t: 'direct', ...state.path }
    }
    return state?.relay === 'on' ? { t: 'relay' } : undefined
  }

  /** Whether a frame the server relayed from `name` is taken (only from a peer we asked the relay for). */
  acceptsRelayed(name: string): boolean {
    const state = this.states.get(name)
    return state !== undefined && state.relay !== 'off'
  }

  /**
   * A probe counts only if its MAC verifies under the token of a current introduction (which only the two peers and the
   * server know): anything else changes nothing and gets no answer. Opening, moving or closing a path also needs a
   * sequence number above any seen under that token, so a sniffed probe replayed from another address does nothing.
   * Returns false when it was not acted on (the core counts it as dropped).
   */
  probe(probe: Probe, from: Endpoint, via: Via): boolean {
    if (this.stopped || probe.to !== this.me) return false
    const state = this.states.get(probe.from)
    const token = state && probeToken(probe, state.tokens)
    if (!state || !token) {
      // Not while we punch the peer ourselves: a punch under an older token is a late one from an attempt it gave up.
      if (probe.t === 'punch' && !(state && (state.path || state.attemptSteps.size > 0))) {
        this.missedIntro(probe.from, () =>
          Boolean(this.states.get(probe.from)?.tokens.some((t) => probeToken(probe, [t]))),
        )
      }
      return false
    }
    this.budget.answer(from.address)
    const fresh = probe.seq > (state.seqs.get(token) ?? -1)
    if (fresh) state.seqs.set(token, probe.seq)
    const onPath = state.path !== undefined && sameEndpoint(state.path.endpoint, from) && state.path.via === via
    if (!fresh && !onPath) return false // a replay from elsewhere: no answer, no change
    const open = !state.path || state.stale
    switch (probe.t) {
      case 'punch':
        this.sendProbe(via, from, state, 'punch-ack')
        // A punch that got in came through both NATs' mappings, and our answer goes back through the same ones: the
        // path is open now, before any ack, so a handshake the peer sends right after its ack finds it.
        if (open && fresh) this.openPath(state, from, via)
        else if (onPath) state.lastHeard = this.clock()
        return true
      case 'punch-ack':
        // The first candidate that answers wins; later answers from other candidates only show the path is alive.
        if (open && fresh) this.openPath(state, from, via)
        else if (onPath) state.lastHeard = this.clock()
        return true
      case 'keepalive':
        // The peer's NAT gave it a new port: a fresh keepalive moves the path there.
        if (state.path && (!onPath || state.stale) && fresh) this.openPath(state, from, via)
        state.lastHeard = this.clock()
        return true
      case 'bye':
        if (fresh) this.lose(state, 'left')
        return true
    }
  }

  /** Any other frame from a peer's path proves the path is alive. */
  heard(from: Endpoint, via: Via): void {
    for (const state of this.states.values()) {
      if (state.path && state.path.via === via && sameEndpoint(state.path.endpoint, from))
        state.lastHeard = this.clock()
    }
  }

  /** The server says `name` left (no bye crosses the relay). */
  left(name: string): void {
    const state = this.states.get(name)
    if (state) this.lose(state, 'left')
  }

  /** The server says `name` asked for the relay with us (`ready` once both asked). */
  peerAskedRelay(name: string, ready: boolean): void {
    const state = this.states.get(name)
    // The peer asked for the relay after an introduction whose copy we did not get: ask for it again.
    if (!state) return this.missedIntro(name, () => this.states.has(name))
    if (ready) this.relayReady(state)
    // The peer asked: consent, so that frames can flow as soon as it needs them, even while our own direct path
    // to it looks fine (the peer asking means it cannot reach us on it).
    else this.askRelay(state, true)
  }

  /** The server's answer to `askRelay`: ready, asked (waiting for the peer), or refused (or unanswered). */
  relayAnswer(name: string, answer: 'ready' | 'asked' | 'refused'): void {
    const state = this.states.get(name)
    if (!state) return
    if (answer === 'ready') return this.relayReady(state)
    if (answer === 'asked') return
    state.relay = 'off'
    if (!state.path && state.attemptSteps.size === 0) this.settle(state, undefined)
  }

  /** Birthday sockets opened for `attempt`; false when the attempt is over (the owner closes them). */
  auxOpened(name: string, attempt: number, sockets: Via[]): boolean {
    const state = this.states.get(name)
    if (this.stopped || !state || state.attempt !== attempt || state.path?.via === this.main) return false
    state.aux.push(...sockets)
    const round = () => {
      sockets.forEach((socket, i) => {
        // Many sockets to one address that has not answered: the birthday share of its budget.
        this.later(state, Math.floor(i / AUX_BATCH) * AUX_BATCH_GAP_MS, () =>
          this.sendProbe(socket, state.public, state, 'punch', 'probe'),
        )
      })
    }
    for (let t = 0; t < this.options.punchTimeoutMs; t += AUX_ROUND_MS) this.later(state, t, round)
    this.effects.log('debug', `birthday: ${sockets.length} sockets punching ${name}`, {
      public: formatEndpoint(state.public),
    })
    return true
  }

  /**
   * The keepalive tick (every `keepaliveMs`): a path quiet for 3.5 intervals is lost; quiet for 2, a fresh introduction
   * is asked for (a NAT rebooted or gave someone a new port; the old path stays until a new one answers); each gets a keepalive.
   */
  keepalive(): void {
    const now = this.clock()
    const { keepaliveMs } = this.options
    for (const state of [...this.states.values()]) {
      if (!state.path) continue
      const quiet = now - state.lastHeard
      if (quiet > keepaliveMs * 3.5) {
        this.lose(state, 'timed out')
        continue
      }
      if (quiet > keepaliveMs * 2 && this.registered && now - state.lastIntroRequest > keepaliveMs * 2) {
        state.stale = true
        this.reintroduce(state)
      }
      this.sendProbe(state.path.via, state.path.endpoint, state, 'keepalive')
    }
  }

  /** The peer directory forgot `name`: its state and every step scheduled for it go, and its waiters are answered. */
  forget(name: string): void {
    const state = this.states.get(name)
    // The directory forgets only names without a path; one that holds a path or the relay here stays all the same.
    if (!state || state.path || state.relay === 'on') return
    this.drop(state)
  }

  /** Everything stops; returns the paths to say `bye` on (the owner sends them, then closes the sockets). */
  stop(): { byes: Array<{ name: string; token: string; endpoint: Endpoint; via: Via }>; sockets: Via[] } {
    this.stopped = true
    const byes: Array<{ name: string; token: string; endpoint: Endpoint; via: Via }> = []
    const sockets: Via[] = []
    for (const state of this.states.values()) {
      if (state.path) byes.push({ name: state.name, token: state.tokens[0], ...state.path })
      this.cancelAll(state)
      this.settle(state, undefined)
      sockets.push(...state.aux)
      if (state.path && state.path.via !== this.main && !state.aux.includes(state.path.via))
        sockets.push(state.path.via)
    }
    this.heap = []
    this.live = 0
    return { byes, sockets }
  }

  /** When `tick` next has something to do. */
  nextDeadline(): number | undefined {
    while (this.heap.length && this.heap[0].cancelled) this.pop()
    return this.heap[0]?.at
  }

  /** Runs every step due by now, in time order. */
  tick(): void {
    const now = this.clock()
    for (;;) {
      const next = this.heap[0]
      if (!next || next.at > now) return
      this.pop()
      if (next.cancelled) continue
      next.cancelled = true
      next.owner?.delete(next)
      this.live--
      if (!this.stopped) next.run()
    }
  }

  // --- punching ---

  /** One direct attempt: the punch schedule on every candidate, birthday probing if one NAT is symmetric, the relay if needed. */
  private punch(state: PeerState<Via>): void {
    this.stopAttempt(state)
    for (const t of punchSchedule(this.options.punchTimeoutMs)) {
      this.later(state, t, () => {
        for (const candidate of state.candidates) this.sendProbe(this.main, candidate, state, 'punch')
      })
    }
    this.later(state, this.options.punchTimeoutMs, () => this.finishAttempt(state))

    if (state.introRetries === 0) state.punchingSince = this.clock()
    const iAmSymmetric = this.myNat === 'symmetric'
    const peerSymmetric = state.nat === 'symmetric'
    if (!iAmSymmetric && !peerSymmetric && state.introRetries < INTRO_RETRIES) {
      // Between easy NATs a path opens in tens of ms. Silence means the peer's copy of the introduction was probably
      // lost, and our punches stop at its NAT, which has sent nothing our way: ask again, both sides get it anew.
      // (Not with a symmetric NAT: birthday probing takes seconds, and a new introduction would start it over.)
      // 1 s, then 1, 2, 4 s: the later ones for a peer whose new process registers while we punch its old one (which
      // quit and whose goodbye was lost), when both copies of the server's introduction of the new one were lost.
      const retryIntro = (): void =>
        this.later(state, INTRO_RETRY_MS * 2 ** Math.max(0, state.introRetries - 1), () => {
          if (state.path && !state.stale) return
          // Not registered yet (our own registration lost a step, as under loss): the server could not answer now, so
          // ask once it can, within this attempt, rather than leave the peer's lost copy to the punch timeout (10 s).
          if (!this.registered) return retryIntro()
          state.introRetries++
          this.effects.log('debug', `${state.name} silent into punching: asking for a new introduction`, {
            retry: state.introRetries,
          })
          this.reintroduce(state)
        })
      retryIntro()
    }
    if (iAmSymmetric && !peerSymmetric && this.options.birthdaySockets > 0)
      this.effects.openAux(state.name, state.attempt)
    if (peerSymmetric && !iAmSymmetric && this.options.birthdaySockets > 0) this.probeRandomPorts(state)
    // With a symmetric NAT on either side a direct path may take seconds (birthday) or never open (both): the relay
    // carries the first messages at once and the path upgrades when punching succeeds. Easy pairs wait `relayAfterMs`.
    if (iAmSymmetric || peerSymmetric) this.askRelay(state)
    else
      this.later(state, Math.max(0, this.options.relayAfterMs - (this.clock() - state.punchingSince)), () =>
        this.askRelay(state),
      )
    this.effects.log('debug', `punching ${state.name}`, {
      candidates: state.candidates.map(formatEndpoint),
      me: this.myNat,
      peer: state.nat,
    })
  }

  /** The other side of birthday punching: random ports on the symmetric peer's public address, paced, until a path opens or the attempt ends. */
  private probeRandomPorts(state: PeerState<Via>): void {
    const perTick = Math.max(1, Math.round((this.options.birthdayRate * PROBE_TICK_MS) / 1000))
    const ticks = Math.floor((this.options.punchTimeoutMs - PROBE_DELAY_MS) / PROBE_TICK_MS)
    const ports = randomPorts(perTick * ticks)
    // One step at a time, each scheduling the next: one scheduled step per peer, not one per tick. One punch for all
    // of them (`attempt` names it): the first to arrive opens the path, the rest are not fresh and change nothing.
    const attempt = state.attempt
    const step = (tick: number): void => {
      if (tick >= ticks) return
      this.later(state, tick === 0 ? PROBE_DELAY_MS : PROBE_TICK_MS, () => {
        if (state.path && !state.stale) return
        const batch: number[] = []
        for (const port of ports.slice(tick * perTick, (tick + 1) * perTick)) {
          if (!this.budget.take(state.public.address, 'probe')) break
          batch.push(port)
        }
        if (batch.length) this.effects.sendPortProbes(state.name, attempt, state.tokens[0], state.public.address, batch)
        step(tick + 1)
      })
    }
    step(0)
    this.effects.log('debug', `birthday: probing ${ports.length} random ports of ${state.name}`, {
      address: state.public.address,
    })
  }

  /** Cancels the running attempt's steps and closes its birthday sockets, except the one a path uses. */
  private stopAttempt(state: PeerState<Via>): void {
    state.attempt++
    this.cancel(state.attemptSteps)
    const keep = state.path?.via
    const closing = state.aux.filter((s) => s !== keep)
    if (closing.length) this.effects.closeAux(closing)
    state.aux = state.aux.filter((s) => s === keep)
  }

  private finishAttempt(state: PeerState<Via>): void {
    this.stopAttempt(state)
    state.introRetries = 0
    if (state.path && !state.stale) return
    if (state.relay === 'on') this.scheduleUpgrade(state)
    else this.settle(state, undefined)
  }

  private openPath(state: PeerState<Via>, endpoint: Endpoint, via: Via): void {
    state.lastHeard = this.clock()
    if (state.path && sameEndpoint(state.path.endpoint, endpoint) && state.path.via === via && !state.stale) return
    const wasDirect = Boolean(state.path)
    const old = state.path?.via
    state.path = { endpoint, via }
    state.stale = false
    state.introRetries = 0
    if (old !== undefined && old !== this.main && old !== via) this.closeAuxOnce(state, old)
    // The winner is known: the other birthday sockets and the remaining punches go at once.
    this.stopAttempt(state)
    this.cancel(state.upgrade)
    this.effects.log('info', `direct path to ${state.name}`, {
      via: formatEndpoint(endpoint),
      socket: via === this.main ? 'main' : 'birthday',
    })
    this.effects.path({ t: 'direct', name: state.name, endpoint, via, first: !wasDirect })
    this.settle(state, 'direct')
  }

  /** Punches the peer on its silent path until it answers (anything heard from it counts) or CHECK_PUNCHES went unanswered. */
  private checkPath(state: PeerState<Via>): void {
    const path = state.path
    if (state.check.size > 0 || !path) return
    const since = this.clock()
    let punches = 0
    const step = (): void => {
      if (state.path !== path || state.lastHeard >= since) return
      if (punches === CHECK_PUNCHES) {
        this.effects.log('info', `direct path to ${state.name} stopped answering`, {
          via: formatEndpoint(path.endpoint),
        })
        return this.lose(state, 'the path stopped answering')
      }
      // One punch unanswered: ask the server where the peer is now, in case it restarted or moved (its answer, and the
      // peer's, move the path); the punches go on meanwhile, in case the old path was only slow.
      if (punches === 1 && this.registered) {
        state.stale = true
        this.reintroduce(state)
      }
      punches++
      this.sendProbe(path.via, path.endpoint, state, 'punch')
      this.at(this.clock() + CHECK_INTERVAL_MS, step, state.check)
    }
    step()
  }

  // --- the relay ---

  /** Asks the server to relay to and from a peer; both must ask before frames flow. `again` renews lost consent. */
  private askRelay(state: PeerState<Via>, again = false): void {
    if (!this.options.relay || !this.serverRelays || (state.relay !== 'off' && !again)) return
    if (state.path && !state.stale && !again) return
    if (state.relay === 'off') state.relay = 'asked'
    this.effects.askRelay(state.name)
  }

  private relayReady(state: PeerState<Via>): void {
    const first = state.relay !== 'on'
    state.relay = 'on'
    if (state.path && !state.stale) return
    // While a direct path is in doubt it is still the path: losing it announces the relay (see lose).
    if (first && !state.path) {
      this.effects.log('info', `relayed path to ${state.name}`)
      this.effects.path({ t: 'relay', name: state.name })
    }
    this.settle(state, 'relay')
    if (state.attemptSteps.size === 0) this.scheduleUpgrade(state)
  }

  /** While relayed, one side (the smaller name, so the two do not cross) asks for a new introduction now and then. */
  private scheduleUpgrade(state: PeerState<Via>): void {
    this.cancel(state.upgrade)
    if (this.stopped || state.path || state.relay !== 'on' || this.me > state.name) return
    if (this.myNat === 'symmetric' && state.nat === 'symmetric') return // no direct path can open between two of them
    this.at(
      this.clock() + this.options.upgradeMs,
      () => {
        if (!state.path && state.relay === 'on' && this.registered) this.reintroduce(state)
      },
      state.upgrade,
    )
  }

  // --- losing and forgetting ---

  /** The peer's process is gone: its relay and the probes still scheduled for it go too, and whoever waits is answered. */
  private leave(state: PeerState<Via>): void {
    this.stopAttempt(state)
    this.cancel(state.upgrade)
    state.relay = 'off'
    this.settle(state, undefined)
  }

  private lose(state: PeerState<Via>, reason: string): void {
    if (!state.path) {
      // Relayed only, and the peer left (the server tells us, as no bye crosses the relay): the relay leads nowhere now.
      if (reason !== 'left' || state.relay === 'off') return
      this.leave(state)
      return this.effects.path({ t: 'lost', name: state.name, reason, online: false })
    }
    const { via } = state.path
    state.path = undefined
    state.stale = false
    this.cancel(state.check)
    if (via !== this.main) this.closeAuxOnce(state, via)
    if (reason === 'left') this.leave(state)
    if (state.relay === 'on') {
      // The relay still joins us: fall back to it rather than lose the peer, and keep trying for direct.
      this.effects.path({ t: 'relay', name: state.name })
      this.scheduleUpgrade(state)
      return
    }
    this.effects.path({ t: 'lost', name: state.name, reason, online: reason !== 'left' })
  }

  /** Past MAX_PEER_STATES: the name introduced longest ago without a path goes (a name with one stays: a conversation). */
  private evict(): void {
    for (const state of this.states.values()) {
      if (!state.path && state.relay !== 'on') return this.drop(state)
    }
    // Every name holds a path or the relay: the oldest introduction goes all the same, so the table stays bounded.
    const oldest = this.states.values().next().value
    if (oldest) this.drop(oldest)
  }

  private drop(state: PeerState<Via>): void {
    this.cancelAll(state)
    const sockets = [...state.aux]
    if (state.path && state.path.via !== this.main && !sockets.includes(state.path.via)) sockets.push(state.path.via)
    if (sockets.length) this.effects.closeAux(sockets)
    state.aux = []
    this.settle(state, undefined)
    this.states.delete(state.name)
  }

  private closeAuxOnce(state: PeerState<Via>, socket: Via): void {
    state.aux = state.aux.filter((s) => s !== socket)
    this.effects.closeAux([socket])
  }

  // --- the server, asked ---

  private reintroduce(state: PeerState<Via>): void {
    state.lastIntroRequest = this.clock()
    this.effects.reintroduce(state.name)
  }

  /**
   * A punch from a name we hold no introduction for (or for an older or newer one), or the server saying that name asked
   * for the relay with us: the server introduced us both, and our copy was lost. Ask for a fresh one, which both sides
   * get with a new token; without this the peer punches into nothing until its attempt ends. Our copy may only be late
   * (the peer's first punch can overtake it): asked after INTRO_GRACE_MS if still missing. At most once per INTRO_ASK_MS
   * per name, for MAX_INTRO_ASKS names, and only while registered: a stranger's punches cost one request a second.
   */
  private missedIntro(name: string, known: () => boolean): void {
    if (!this.registered || name === this.me) return
    const now = this.clock()
    if (now - (this.introAsked.get(name) ?? -Infinity) < INTRO_ASK_MS) return
    if (this.introAsked.size >= MAX_INTRO_ASKS)
      for (const [n, at] of this.introAsked) if (now - at >= INTRO_ASK_MS) this.introAsked.delete(n)
    if (this.introAsked.size >= MAX_INTRO_ASKS) return
    this.introAsked.set(name, now)
    this.at(now + INTRO_GRACE_MS, () => {
      if (!this.registered || known()) return
      this.effects.log('debug', `heard from ${name} under an introduction we did not get: asking for a new one`)
      this.effects.askIntro(name)
    })
  }

  // --- sending ---

  /** Sends a probe; a punch to an address that never answered only within its budget. */
  private sendProbe(
    via: Via,
    to: Endpoint,
    state: PeerState<Via>,
    t: ProbeType,
    kind: 'punch' | 'probe' = 'punch',
  ): void {
    if (t === 'punch' && !this.budget.take(to.address, kind)) return
    this.effects.sendProbe(via, to, state.name, state.tokens[0], t)
  }

  private settle(state: PeerState<Via>, path: PathKind | undefined): void {
    for (const waiter of state.waiters.splice(0)) waiter(path)
  }

  // --- the schedule ---

  /** A step of the running attempt, `ms` from now; cancelled with the attempt. */
  private later(state: PeerState<Via>, ms: number, run: () => void): void {
    this.at(this.clock() + ms, run, state.attemptSteps)
  }

  private at(at: number, run: () => void, owner?: Set<Scheduled>): void {
    const step: Scheduled = { at, seq: this.seq++, run, cancelled: false, owner }
    owner?.add(step)
    this.live++
    const earliest = this.nextDeadline()
    this.push(step)
    if (earliest === undefined || at < earliest) this.effects.deadline(at)
  }

  private cancel(steps: Set<Scheduled>): void {
    for (const step of steps) {
      step.cancelled = true
      this.live--
    }
    steps.clear()
    // Cancelled steps wait in the heap until popped; when they outnumber the live ones the heap is rebuilt.
    if (this.heap.length > 2 * this.live + 64) this.compact()
  }

  private cancelAll(state: PeerState<Via>): void {
    this.stopAttempt(state)
    this.cancel(state.upgrade)
    this.cancel(state.check)
  }

  private compact(): void {
    const kept = this.heap.filter((s) => !s.cancelled)
    this.heap = []
    for (const step of kept) this.push(step)
  }

  private push(step: Scheduled): void {
    const heap = this.heap
    heap.push(step)
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1
      if (!before(heap[i], heap[parent])) break
      ;[heap[i], heap[parent]] = [heap[parent], heap[i]]
      i = parent
    }
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()
    if (!last || heap.length === 0) return
    heap[0] = last
    for (let i = 0; ;) {
      const [l, r] = [2 * i + 1, 2 * i + 2]
      let smallest = i
      if (l < heap.length && before(heap[l], heap[smallest])) smallest = l
      if (r < heap.length && before(heap[r], heap[smallest])) smallest = r
      if (smallest === i) return
      ;[heap[i], heap[smallest]] = [heap[smallest], heap[i]]
      i = smallest
    }
  }
}

const before = (a: Scheduled, b: Scheduled): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)
