// Reliable delivery: every chat envelope goes through a ReliableLink per peer (ids, acks, retransmission, order,
// fragments), with the outbox and the received ids kept in the profile so that a restart loses and repeats nothing.
import { performance } from 'node:perf_hooks'
import {
  definePlugin,
  isVeto,
  number,
  object,
  optional,
  validate,
  Veto,
  type CoreServices,
  type Logger,
} from '../../core'
import { DurableState, type DurableMark } from './durable'
import {
  bundleFrames,
  FRAME_ACK,
  FRAME_BUNDLE,
  FRAME_DATA,
  FrameError,
  MAX_FRAME_BYTES,
  peekFirstFragmentId,
  unbundle,
} from '../../protocol/reliable'
import { ReliableLink, type ReliableLinkStats } from './link'

/** The largest receive window the option allows, and the congestion window's ceiling (a peer's window caps it). */
const MAX_WINDOW_FRAMES = 4096

const optionsSchema = object({
  /** Messages to one peer accepted and not yet acknowledged; sending more is refused until some are delivered. */
  maxOutboxMessages: optional(number({ min: 1, max: 1_000_000, integer: true }), 10_000),
  /** Received ids remembered per peer for duplicate suppression; keep it at least the peers' maxOutboxMessages. */
  seenIdsPerPeer: optional(number({ min: 16, max: 10_000_000, integer: true }), 20_000),
  /** Received ids remembered across all peers (about 150 bytes of memory each): names are free, so the total is bounded too. */
  seenIdsTotal: optional(number({ min: 16, max: 10_000_000, integer: true }), 100_000),
  /** Characters of undelivered envelopes the outbox holds, to all peers: sending more is refused until some are delivered. */
  maxOutboxBytes: optional(number({ min: 64 * 1024, integer: true }), 64 * 1024 * 1024),
  /** Largest encoded envelope: room for 64 KiB of text with JSON escaping; both sides must agree. */
  maxMessageBytes: optional(number({ min: 1024, max: 256 * 1024, integer: true }), 192 * 1024),
  /** First and longest wait between attempts to reach a peer while messages for it are queued. */
  retryMinMs: optional(number({ min: 10, max: 60_000, integer: true }), 250),
  retryMaxMs: optional(number({ min: 10, max: 600_000, integer: true }), 10_000),
  /** Frames kept to resend at once when a path returns (the link retransmits the rest on its timer). */
  parkedFrames: optional(number({ min: 1, max: 4096, integer: true }), 512),
  /** A journal larger than this is compacted at its next commit. */
  compactBytes: optional(number({ min: 4096, integer: true }), 16 * 1024 * 1024),
  /** ACK batching and the retransmission timeout bounds, passed to every link. The floor is low, as QUIC's (which has
   *  none): the RTO formula already adds the peer's ACK delay, and under heavy loss each timeout at a 100 ms floor
   *  (the link's default) costs more than the round trips it guards. A spurious resend is harmless (deduplicated). */
  ackDelayMs: optional(number({ min: 1, max: 1000, integer: true }), 20),
  minRtoMs: optional(number({ min: 5, max: 1000, integer: true }), 25),
  /** Congestion window floor, in frames: random loss is not congestion, and a window of 2 (the link's default) leaves
   *  too few frames behind a loss to detect it without a timeout. 10 is TCP's initial window (RFC 6928). */
  minWindow: optional(number({ min: 2, max: 32, integer: true }), 10),
  maxRtoMs: optional(number({ min: 1000, max: 60_000, integer: true }), 10_000),
  /** Receive window in frames: the peer has at most this many in flight, so a burst moves this many per round trip,
   *  which here includes both sides' fdatasync and the receiver's queue (measured on loopback: 768 ~43,000 msg/s,
   *  2048 ~50,000). A peer can make us buffer at most this many full frames (2048: 2.2 MB). Bursts this large need
   *  the udp plugin's larger socket buffer; where the system refuses it, losses shrink the sender's window. */
  windowFrames: optional(number({ min: 256, max: MAX_WINDOW_FRAMES, integer: true }), 2048),
  /** Links kept at most. Names cost a peer nothing, so past this the least recently used idle links are dropped (what
   *  must survive is in the journals); a busy link is never dropped. The peer directory keeps 1,024 names. */
  maxLinks: optional(number({ min: 16, max: 1_000_000, integer: true }), 1024),
})

export type ReliableOptions = NonNullable<ReturnType<typeof optionsSchema>>
/** Batches of at least this many frames are bundled; measured: at 20–30 % loss smaller bundles cost timeouts. */
const BUNDLE_FROM_FRAMES = 16
/** Received messages are marked handed to the app in writes of at most this many: one syscall per message cost a fifth
 *  of the receiver's time in a burst, and a process killed mid-burst hands at most this many over again (same ids). */
export const SHOWN_MARKS_PER_WRITE = 32
type Deps = Pick<CoreServices, 'hooks' | 'logger' | 'profile' | 'pipeline' | 'chat' | 'peers'>

/** What the plugin exposes through the container (`plugin:reliable`), for tests and the benchmark. */
export interface ReliableHandle {
  stats(): ReliablePluginStats
}

export interface ReliablePluginStats {
  epoch: number
  /** Links held now, and how many idle ones were dropped so far (for a forgotten name, or past `maxLinks`). */
  links: number
  linksDropped: number
  peers: Record<string, ReliableLinkStats & { parked: number; sendFailures: number }>
  journal: ReturnType<DurableState['stats']>
}

interface Outgoing {
  frame: Buffer
  /** The message records it needs on disk: for a data frame its message's, for an ACK those of the messages it covers. */
  needs: DurableMark
  /** How many received messages the app must have been handed first (all those the frame may acknowledge). */
  handed: number
}

interface Inbound {
  id: string
  payload: Buffer
  recorded: Promise<unknown>
}

/** One peer's link and what surrounds it. */
interface Peer {
  name: string
  link: ReliableLink
  timer: NodeJS.Timeout | undefined
  timerAt: number
  /** Frames from the link, in order, each waiting until what it needs is durable and handed to the app (see release). */
  out: Outgoing[]
  releaseQueued: boolean
  /** Messages the link delivered to the plugin, and those of them handed to the app: an ACK waits for the first as it
   *  was when the ACK was made to be reached by the second. */
  receivedCount: number
  handedCount: number
  /** Received messages waiting to be handed to the app, in order, with the promise that their record is durable. */
  inbound: Inbound[]
  /** Settles once every message received so far has been handed to the app (groups of `inbound`, one after another). */
  delivering: Promise<void>
  /** False after a send failed, until a path is back: frames are parked instead of failing one by one. */
  reachable: boolean
  parked: Buffer[]
  retry: NodeJS.Timeout | undefined
  retryMs: number
  /** Ids whose first frame has not gone out yet (`sent` is reported when it does). */
  unsent: Set<string>
  /** Ids reported `failed` (still queued: they are delivered if the refusal lifts). */
  failed: Set<string>
  sendFailures: number
  /** The peer's identity key the link's streams belong to; another key is another device, whose streams start over. */
  key: string | undefined
  /** Dropped from the table (see dropLink): late callbacks of its link or sends change nothing. */
  dropped: boolean
}

export default definePlugin<ReliableOptions, Deps>({
  name: 'reliable',
  needs: ['encryption', 'path'],
  provides: ['delivery'],
  options: (raw) => {
    const result = validate(optionsSchema, raw)
    if ('value' in result && result.value.retryMinMs > result.value.retryMaxMs)
      return { problems: ['retryMinMs must not exceed retryMaxMs'] }
    return result
  },
  create({ hooks, logger, profile, pipeline, chat, peers: directory }, options): ReliableHandle {
    const log: Logger = logger.child('reliable')
    /** Least recently used first: the order in which idle links are dropped. */
    const peers = new Map<string, Peer>()
    /** The epoch new links use, and the highest epoch of a dropped link: a name's next link must use a higher one. */
    let linkEpoch = 0
    let droppedEpoch = 0
    let linksDropped = 0
    const clock = () => performance.now()
    let state: DurableState | undefined
    let stopped = false
    let readyGate!: () => void
    const ready = new Promise<void>((resolve) => (readyGate = resolve))

    hooks.init.tapPromise('reliable', async () => {
      state = DurableState.open(profile.dir, {
        seenIdsPerPeer: options.seenIdsPerPeer,
        seenIdsTotal: options.seenIdsTotal,
        compactBytes: options.compactBytes,
      })
      state.onCommit(() => {
        for (const p of peers.values()) if (p.out.length > 0) release(p)
      })
      log.debug('state opened', { epoch: state.epoch })
    })

    // A name the directory forgot (introduced, silent, no path) takes its link with it, unless the link still has work.
    directory.onForget((name) => {
      const p = peers.get(name)
      if (p && idle(p)) dropLink(p)
    })

    hooks.start.tapPromise('reliable', async () => {
      const s = durable()
      // Messages received before a restart and never handed to the app go first, once the frontends are up.
      for (const { peer, id, payload } of s.unshownEntries())
        enqueueInbound(peerFor(peer), { id, payload, recorded: ready })
      // The outbox of the last run goes out again, in its order, in a stream of the new epoch.
      for (const { peer, id, payload } of s.outboxEntries()) {
        const p = peerFor(peer)
        p.unsent.add(id)
        p.link.submit(id, payload)
      }
    })

    hooks.ready.tap('reliable', () => {
      for (const { peer, id } of durable().outboxEntries()) hooks.messageState.call({ id, to: peer, state: 'pending' })
      readyGate()
    })

    hooks.stop.tapPromise('reliable', async () => {
      stopped = true
      for (const p of peers.values()) {
        clearTimeout(p.timer)
        clearTimeout(p.retry)
        p.link.close()
        log.info('link stats', { peer: p.name, ...summary(p) })
      }
      // Let the app finish what it was handed, then flush the journals.
      await Promise.all([...peers.values()].map((p) => p.delivering))
      await state?.close()
    })

    // transmit and unwrap do synchronous work only: plain taps spare a promise per message (tapable allows sync taps on async hooks).
    hooks.transmit.tap('reliable', (peer, envelope) => {
      const s = durable()
      const id = envelope.id
      if (typeof id !== 'string' || id === '') throw new Veto('reliable delivery needs an envelope with a string id')
      const json = JSON.stringify(envelope)
      const payload = Buffer.from(json)
      if (payload.length > options.maxMessageBytes) {
        throw new Veto(
          `the message is ${payload.length} bytes once encoded; reliable delivery carries at most ${options.maxMessageBytes}`,
        )
      }
      if (s.outboxBytes + json.length > options.maxOutboxBytes) {
        throw new Veto(
          `the outbox is full (${size(s.outboxBytes)} of undelivered messages, at most ${size(options.maxOutboxBytes)}); wait until peers receive them`,
        )
      }
      if (s.outboxSize(peer) >= options.maxOutboxMessages) {
        throw new Veto(
          `the outbox for ${peer} is full (${options.maxOutboxMessages} messages not yet delivered); wait until ${peer} receives them`,
        )
      }
      const p = peerFor(peer)
      // Not awaited: frames leave only once the record is durable (release), so the record is on disk before any
      // frame of the message is on the wire, and a burst shares one fdatasync instead of one per message.
      void s.queue(peer, id, json) // a failed record surfaces in release (DurableState.failure)
      p.unsent.add(id)
      p.link.submit(id, payload)
      // The peer was lost (it left, or could not be reached): a message the user writes now looks for it at once,
      // rather than at the next retry of an earlier one, or never when nothing else was waiting.
      if (!p.reachable) retryNow(p)
      return true
    })

    hooks.unwrap.tap('reliable', (packet) => {
      const kind = packet.bytes[0]
      if (kind !== FRAME_DATA && kind !== FRAME_ACK && kind !== FRAME_BUNDLE) return undefined
      if (stopped) return true
      const p = peerFor(packet.peer)
      try {
        // Each frame of a bundle is taken as if it had come alone: a bad one is dropped, the others count.
        for (const frame of kind === FRAME_BUNDLE ? unbundle(packet.bytes) : [packet.bytes]) {
          try {
            p.link.receive(frame)
          } catch (error) {
            if (!(error instanceof FrameError)) throw error
            log.debug(`bad frame from ${p.name}: ${error.message}`)
          }
        }
      } catch (error) {
        if (!(error instanceof FrameError)) throw error
        log.debug(`bad bundle from ${p.name}: ${error.message}`)
      }
      // Hearing the peer means a path works: what was parked goes now.
      if (!p.reachable) pathBack(p)
      return true
    })

    hooks.peerDiscovered.tap('reliable', ({ name, publicKey }) => {
      const p = peers.get(name)
      if (!p || !publicKey || stopped) return
      if (p.key === undefined) p.key = publicKey
      else if (p.key !== publicKey) startOver(p, publicKey)
    })

    hooks.peerConnected.tap('reliable', (peer) => {
      const p = peers.get(peer)
      if (p) pathBack(p)
    })

    hooks.peerLost.tap('reliable', (peer) => {
      const p = peers.get(peer)
      if (!p) return
      p.reachable = false
      if (hasWork(p)) scheduleRetry(p)
    })

    function durable(): DurableState {
      if (!state) throw new Error('reliable: used before init')
      return state
    }

    function peerFor(name: string): Peer {
      const existing = peers.get(name)
      if (existing) {
        peers.delete(name) // re-inserted as the most recently used
        peers.set(name, existing)
        return existing
      }
      const s = durable()
      if (linkEpoch === 0) linkEpoch = s.epoch
      // The peer may still hold the stream of a dropped link under this name: a higher epoch tells it that this side
      // restarted, so it sends again what we did not acknowledge (the inbox's ids turn what we had into no-ops). One
      // raise serves every link created until the next drop.
      if (linkEpoch <= droppedEpoch) linkEpoch = s.nextEpoch()
      const p: Peer = {
        name,
        link: undefined as unknown as ReliableLink,
        timer: undefined,
        timerAt: Infinity,
        out: [],
        releaseQueued: false,
        receivedCount: 0,
        handedCount: 0,
        inbound: [],
        delivering: Promise.resolve(),
        reachable: true,
        parked: [],
        retry: undefined,
        retryMs: options.retryMinMs,
        unsent: new Set(),
        failed: new Set(),
        sendFailures: 0,
        key: directory.get(name)?.publicKey,
        dropped: false,
      }
      p.link = createLink(p, linkEpoch)
      peers.set(name, p)
      if (peers.size > options.maxLinks) dropIdleLinks(p)
      return p
    }

    /**
     * Nothing of this link is needed any more: no message of ours unacknowledged (the outbox), none received and not yet
     * handed to the app, no frame waiting for the journal. What it still holds (fragments, a due ACK, its RTT) the peer
     * repairs after the epoch raise in peerFor, and which ids were delivered is in the journal, not in the link.
     */
    function idle(p: Peer): boolean {
      return (
        !p.dropped &&
        p.link.stats().queuedMessages === 0 &&
        durable().outboxSize(p.name) === 0 &&
        p.inbound.length === 0 &&
        p.handedCount === p.receivedCount &&
        p.out.length === 0 &&
        !p.releaseQueued
      )
    }

    /** Past `maxLinks`: drops the least recently used idle links, an eighth of the table at once so epochs rise seldom. */
    function dropIdleLinks(keep: Peer): void {
      const target = options.maxLinks - Math.floor(options.maxLinks / 8)
      for (const p of [...peers.values()]) {
        if (peers.size <= target) return
        if (p !== keep && idle(p)) dropLink(p)
      }
    }

    function dropLink(p: Peer): void {
      p.dropped = true
      clearTimeout(p.timer)
      clearTimeout(p.retry)
      p.timer = undefined
      p.retry = undefined
      p.parked = []
      p.link.close()
      peers.delete(p.name)
      droppedEpoch = Math.max(droppedEpoch, p.link.epoch)
      linksDropped++
    }

    function createLink(p: Peer, epoch: number): ReliableLink {
      const s = durable()
      const name = p.name
      return new ReliableLink({
        epoch,
        clock,
        maxMessageBytes: options.maxMessageBytes,
        ackDelayMs: options.ackDelayMs,
        minRtoMs: options.minRtoMs,
        minWindow: options.minWindow,
        maxRtoMs: options.maxRtoMs,
        windowFrames: options.windowFrames,
        maxBufferedBytes: options.windowFrames * MAX_FRAME_BYTES,
        maxWindow: MAX_WINDOW_FRAMES,
        output: (frame) => {
          p.out.push({ frame, needs: s.mark(), handed: p.receivedCount })
          // Released after the link's current call: the frames it puts out at once leave together (bundled).
          if (!p.releaseQueued) {
            p.releaseQueued = true
            queueMicrotask(() => {
              p.releaseQueued = false
              release(p)
            })
          }
        },
        // Recorded now (durable before any ACK leaves, see release); handed to the app once durable, in order.
        deliver: (id, payload) => enqueueInbound(p, { id, payload, recorded: s.received(name, id, payload) }),
        store: { seen: (id) => s.seen(name, id), markDelivered: () => undefined },
        onAcked: (id) => {
          s.acknowledged(name, id)
          p.unsent.delete(id)
          p.failed.delete(id)
          p.retryMs = options.retryMinMs
          hooks.messageState.call({ id, to: name, state: 'delivered' })
        },
        onError: (error) => log.debug(`${name}: ${error.message}`),
        onDeadline: (deadline) => arm(p, deadline),
      })
    }

    /**
     * The peer's name now has another key (a new device, a reinstalled profile): that device knows nothing of our streams
     * and may use any epoch, so the link starts over in a new epoch of ours, with what is not yet acknowledged in order.
     */
    function startOver(p: Peer, key: string): void {
      const unacked = p.link.unacked()
      p.link.close()
      clearTimeout(p.timer)
      p.timer = undefined
      p.timerAt = Infinity
      p.out = []
      p.parked = []
      p.key = key
      p.link = createLink(p, durable().nextEpoch())
      for (const { id, payload } of unacked) p.link.submit(id, payload)
      log.info(`${p.name} has a new key: delivery to it starts over`, { waiting: unacked.length })
    }

    /** Queues a received message for the app; a new group starts when the queue was empty, after the group before it. */
    function enqueueInbound(p: Peer, message: Inbound): void {
      if (p.inbound.length === 0) p.delivering = p.delivering.then(() => handOverGroup(p))
      p.inbound.push(message)
      p.receivedCount++
    }

    /**
     * Hands the queued messages to routing and delivery once their records are durable (the journal makes records durable
     * in order, so the last one's promise covers all), then marks them shown so a restart does not hand them over again.
     */
    async function handOverGroup(p: Peer): Promise<void> {
      const group = p.inbound.splice(0)
      try {
        await group[group.length - 1].recorded
      } catch (error) {
        return journalFailed(error as Error)
      }
      let shown: string[] = []
      for (const { id, payload } of group) {
        try {
          await pipeline.receiveEnvelope(p.name, payload)
        } catch (error) {
          log.error(`a message from ${p.name} could not be handed to the app: ${(error as Error).message}`)
        }
        shown.push(id)
        p.handedCount++
        if (shown.length === SHOWN_MARKS_PER_WRITE) {
          durable().shown(p.name, shown)
          shown = []
        }
      }
      durable().shown(p.name, shown)
      release(p) // ACKs waiting for this group: one ACK per group rather than one per message
    }

    /** One timer per link; a later deadline lets the armed timer fire early (harmless) rather than re-arming each time. */
    function arm(p: Peer, deadline: number | undefined): void {
      if (deadline === undefined || stopped) return
      if (p.timer && p.timerAt <= deadline) return
      clearTimeout(p.timer)
      p.timerAt = deadline
      p.timer = setTimeout(
        () => {
          p.timer = undefined
          p.timerAt = Infinity
          // After the socket is read (setImmediate runs after I/O): a timer that fires late because the loop was busy
          // would otherwise count frames as lost whose ACKs are waiting unread, and shrink the window for nothing.
          setImmediate(() => {
            p.link.tick()
            arm(p, p.link.nextDeadline())
          })
        },
        Math.max(0, Math.ceil(deadline - clock())),
      )
    }

    /**
     * Sends the frames at the head of `out` whose needs are met: the message records they depend on are durable, and the
     * messages they may acknowledge were handed to the app. So an ACK never covers a message a crash could lose or repeat,
     * and no frame of a message leaves before the message is stored. Each frame waits for its own needs only, so ACKs
     * leave as each fdatasync completes rather than one batch after another.
     */
    function release(p: Peer): void {
      if (stopped) return
      const s = durable()
      if (s.failure) return journalFailed(s.failure)
      let ready = 0
      while (ready < p.out.length && s.isDurable(p.out[ready].needs) && p.handedCount >= p.out[ready].handed) ready++
      if (ready > 0) sendFrames(p, withoutStaleAcks(p.out.splice(0, ready).map((entry) => entry.frame)))
    }

    /**
     * Sends frames in order. A burst goes as many to a datagram as fit (see bundleFrames): one seal and one send for
     * several. A smaller batch goes one frame per datagram: it is what a small window under loss sends, and a lost
     * bundle would take several of its few frames at once, leaving too few later ones to find the loss before a timeout.
     */
    function sendFrames(p: Peer, frames: Buffer[]): void {
      if (!p.reachable) return park(p, frames)
      const datagrams =
        frames.length >= BUNDLE_FROM_FRAMES
          ? bundleFrames(frames)
          : frames.map((frame) => ({ bytes: frame, frames: [frame] }))
      for (const datagram of datagrams) {
        const ids = p.unsent.size > 0 ? datagram.frames.map(peekFirstFragmentId) : []
        pipeline.sendSealed(p.name, datagram.bytes).then(
          () => {
            for (const id of ids)
              if (id !== undefined && p.unsent.delete(id)) hooks.messageState.call({ id, to: p.name, state: 'sent' })
          },
          (error: Error) => sendFailed(p, datagram.frames, error),
        )
      }
    }

    function sendFailed(p: Peer, frames: Buffer[], error: Error): void {
      if (stopped || p.dropped) return
      p.sendFailures++
      const path = directory.get(p.name)?.path
      // With a path, a failed send (a full socket buffer, a firewall's EPERM) is one lost datagram: the link repairs it.
      if (path && !isVeto(error)) return
      park(p, frames)
      if (p.reachable) log.debug(`cannot send to ${p.name}: ${error.message}`)
      p.reachable = false
      scheduleRetry(p)
      // A plugin refusing while a path exists (the peer's key changed) will not pass by itself: say so. The messages
      // stay queued and go if the refusal is lifted (e.g. /trust); an offline peer only keeps them pending.
      if (isVeto(error) && path) {
        for (const { id } of p.link.unacked()) {
          if (p.failed.has(id)) continue
          p.failed.add(id)
          hooks.messageState.call({ id, to: p.name, state: 'failed', reason: error.message })
        }
      }
    }

    function park(p: Peer, frames: Buffer[]): void {
      p.parked.push(...frames)
      // The link retransmits what is dropped here.
      if (p.parked.length > options.parkedFrames) p.parked.splice(0, p.parked.length - options.parkedFrames)
    }

    /**
     * The batch without ACK-only frames that a later one in it supersedes: the link's latest ACK is its current state
     * (cumulative ack and window only grow), so earlier ones would only cost a seal, a send and an open each.
     */
    function withoutStaleAcks(frames: Buffer[]): Buffer[] {
      let last = -1
      for (let i = 0; i < frames.length; i++) if (frames[i][0] === FRAME_ACK) last = i
      return frames.filter((frame, i) => frame[0] !== FRAME_ACK || i === last)
    }

    function hasWork(p: Peer): boolean {
      return p.parked.length > 0 || durable().outboxSize(p.name) > 0
    }

    /** Tries to reach the peer again, backing off, while something for it is queued. */
    function scheduleRetry(p: Peer, now = false): void {
      if (p.retry || stopped || p.dropped) return
      const delay = now ? 0 : p.retryMs
      if (!now) p.retryMs = Math.min(options.retryMaxMs, p.retryMs * 2)
      p.retry = setTimeout(() => {
        p.retry = undefined
        if (stopped || p.reachable || !hasWork(p)) return
        chat.connect(p.name).then(
          () => pathBack(p),
          (error: Error) => {
            log.debug(`${p.name} still unreachable: ${error.message}`)
            scheduleRetry(p)
          },
        )
      }, delay)
    }

    /** Looks for the peer now, with the backoff reset: the next retry, if this fails, is the shortest. */
    function retryNow(p: Peer): void {
      clearTimeout(p.retry)
      p.retry = undefined
      p.retryMs = options.retryMinMs
      scheduleRetry(p, true)
    }

    /** A path to the peer exists again: resend what was parked at once, rather than at the next retransmission timeout. */
    function pathBack(p: Peer): void {
      if (stopped || p.dropped) return
      clearTimeout(p.retry)
      p.retry = undefined
      p.reachable = true
      p.link.pathRestored()
      sendFrames(p, p.parked.splice(0))
    }

    let journalFailure: Error | undefined
    function journalFailed(error: Error): void {
      if (journalFailure) return // reported once; every later record fails the same way
      journalFailure = error
      log.error(error.message)
      hooks.problem.call({
        source: 'reliable',
        message: `${error.message}; messages are not acknowledged until this is fixed and udsu restarted`,
      })
    }

    function summary(p: Peer) {
      return { ...p.link.stats(), parked: p.parked.length, sendFailures: p.sendFailures }
    }

    return {
      stats: () => ({
        epoch: durable().epoch,
        links: peers.size,
        linksDropped,
        peers: Object.fromEntries([...peers.values()].map((p) => [p.name, summary(p)])),
        journal: durable().stats(),
      }),
    }
  },
})

function size(characters: number): string {
  return characters < 1024 * 1024
    ? `${Math.round(characters / 1024)} KiB`
    : `${(characters / (1024 * 1024)).toFixed(1)} MiB`
}
