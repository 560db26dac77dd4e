// Reliable, ordered, exactly-once delivery of messages to one peer over a lossy datagram path.
// Pure and deterministic: no sockets, no timers. Time comes from `clock`, frames leave through `output`,
// and the owner calls `tick()` at `nextDeadline()`. The algorithm and frame layout are in README.md.
import {
  type AckBlock,
  type DataFrame,
  FrameError,
  type SackRange,
  MAX_FRAME_BYTES,
  MAX_ID_BYTES,
  MAX_SACK_RANGES,
  dataOverhead,
  decodeFrame,
  encodeFrame,
} from './frame'
import type { DeliveredStore } from './store'
import { Fifo } from '../../core/fifo'

export interface ReliableLinkOptions {
  /** This side's incarnation, 1..2^32-1; must be greater than any epoch this side used with this peer before. */
  epoch: number
  /** The current time in ms; virtual in tests. */
  clock: () => number
  /** Sends one frame (plaintext; the caller seals it). Called synchronously from any method. */
  output: (frame: Buffer) => void
  /** Hands one message to the app, in order. The message counts as received only once a returned promise resolves. */
  deliver: (id: string, payload: Buffer) => void | Promise<void>
  /** Which ids were already delivered; back it with disk so a restart never delivers an id twice. */
  store: DeliveredStore
  /** The peer has durably delivered this message; the sender may forget it. Called in submission order. */
  onAcked?: (id: string) => void
  /** A delivery failed (it is retried after `deliveryRetryMs`) or a peer sent an impossible message. */
  onError?: (error: Error) => void
  /** `nextDeadline()` changed; the owner re-arms its single timer. Also called after an async delivery settles. */
  onDeadline?: (deadline: number | undefined) => void
  /** Largest frame this side sends or accepts, header included. Both sides must use the same value. */
  maxFrameBytes?: number
  /** Largest message payload `submit` accepts. */
  maxMessageBytes?: number
  /** Receive window: frames held (out of order, or awaiting delivery) at most. */
  windowFrames?: number
  /** Receive buffer: payload bytes held at most; the window shrinks to fit it. */
  maxBufferedBytes?: number
  /** Congestion window in frames: start, floor, ceiling. */
  initialWindow?: number
  minWindow?: number
  maxWindow?: number
  /** An ACK goes out this long after the first frame it covers, or at once after `ackEveryFrames` frames. */
  ackDelayMs?: number
  ackEveryFrames?: number
  /** Retransmission timeout bounds (RFC 6298); the initial one applies until the first RTT sample. */
  initialRtoMs?: number
  minRtoMs?: number
  maxRtoMs?: number
  /** How long to wait before offering a message again after `deliver` failed. */
  deliveryRetryMs?: number
}

export interface ReliableLinkStats {
  dataFramesSent: number
  ackFramesSent: number
  retransmissions: number
  fastRetransmits: number
  timeouts: number
  /** Consecutive retransmission timeouts without progress; the owner may give up on a peer past some count. */
  backoff: number
  framesReceived: number
  duplicates: number
  /** Frames dropped: beyond the window, from an older epoch, or addressed to an older incarnation of this side. */
  dropped: number
  /** Messages skipped because the store had seen their id. */
  deduplicated: number
  delivered: number
  /** Times the peer restarted and this side re-sent its unacknowledged messages in a new stream. */
  streamResets: number
  srtt: number | undefined
  rttvar: number | undefined
  rto: number
  cwnd: number
  inFlight: number
  peerEpoch: number
  /** Messages submitted and not yet acknowledged. */
  queuedMessages: number
  /** What the receive side holds now: frames and payload bytes. */
  bufferedFrames: number
  bufferedBytes: number
}

/** What `receive` did with a well-formed frame. */
export type ReceiveOutcome =
  | 'accepted'
  | 'duplicate'
  /** Beyond the receive window or buffer; the sender will retransmit. */
  | 'dropped'
  /** From an older epoch of the peer. */
  | 'stale'
  /** Addressed to another incarnation of this side; answered so the peer learns the current epoch. */
  | 'unaddressed'
  | 'ack'
  | 'closed'

const DEFAULTS = {
  maxFrameBytes: MAX_FRAME_BYTES,
  maxMessageBytes: 64 * 1024,
  windowFrames: 256,
  maxBufferedBytes: 1024 * 1024,
  initialWindow: 32,
  minWindow: 2,
  maxWindow: 1024,
  ackDelayMs: 20,
  ackEveryFrames: 8,
  initialRtoMs: 1000,
  minRtoMs: 100,
  maxRtoMs: 10_000,
  deliveryRetryMs: 1000,
}
type Tuning = typeof DEFAULTS

const U32_MAX = 0xffffffff
/** QUIC's packet threshold: a frame is lost once one sent 3 transmissions later was acknowledged. */
const PACKET_THRESHOLD = 3
/** Frames a probe timeout sends (RFC 9002 §6.2.4: one or two). */
const PROBE_FRAMES = 2
/** RFC 9002 §7.6.1: losses spanning this many probe timeouts, none acknowledged in between, are persistent congestion. */
const PERSISTENT_CONGESTION_PTOS = 3
/** Timer lateness allowed on the peer's ACK delay before an ACK's RTT sample is distrusted. */
const ACK_DELAY_SLACK_MS = 5
/** Clock granularity term G of RFC 6298. */
const GRANULARITY_MS = 1
/**
 * Hellos resent at a steady pace before they back off. A hello is one small frame and the peer answers it at once, and
 * it goes only while a path exists (the plugin parks frames otherwise); but before any RTT sample the RTO is the
 * conservative initial one (1 s) and doubles per loss, so under 20 % loss (a round trip fails a third of the time) one
 * link in a hundred waited 15 s, and one in a thousand a minute, before its first message (issue 10, journey 7).
 */
const HELLO_STEADY_TRIES = 8
/** The hellos' pace while steady, unless the RTO is shorter: a late answer costs only a duplicate small frame. */
const HELLO_INTERVAL_MS = 250

interface OutMessage {
  id: string
  payload: Buffer
  /** Seq just past the message's last fragment in the current stream. */
  end: number
}

interface SendFrame {
  seq: number
  message: OutMessage
  fragIndex: number
  fragCount: number
  chunk: Buffer
  sent: boolean
  sentAt: number
  /** Transmission number of the latest send; orders sends for loss detection, as QUIC packet numbers do. */
  tx: number
  retransmitted: boolean
  /** Acknowledged, selectively or cumulatively. */
  acked: boolean
  inFlight: boolean
  lost: boolean
}

interface Partial {
  start: number
  count: number
  frags: (Buffer | undefined)[]
  have: number
  id?: string
}

interface Assembled {
  start: number
  count: number
  id: string
  payload: Buffer
  /** A peer sent a message larger than allowed: consume it without delivering. */
  discard: boolean
}

export class ReliableLink {
  readonly epoch: number
  private readonly tuning: Tuning
  /** Frames the receive side holds at most (window and byte limit together). */
  private readonly window: number
  private readonly clock: () => number
  private readonly output: (frame: Buffer) => void
  private readonly deliverFn: (id: string, payload: Buffer) => void | Promise<void>
  private readonly store: DeliveredStore
  private readonly onAcked?: (id: string) => void
  private readonly onError?: (error: Error) => void
  private readonly onDeadline?: (deadline: number | undefined) => void
  private closed = false
  private peerEpoch = 0
  private lastDeadline: number | undefined

  // ── send side ──
  private readonly outbox = new Fifo<OutMessage>()
  private readonly outboxIds = new Set<string>()
  /** Frames from `sndUna` on; frames[head + k] has seq sndUna + k. */
  private frames: SendFrame[] = []
  private head = 0
  private sndUna = 0
  private nextSeq = 0
  /** One past the highest seq ever sent in this stream. */
  private sentUpTo = 0
  private retransmitQueue: SendFrame[] = []
  private inFlight = 0
  private txCounter = 0
  private largestAckedTx = 0
  /** When a frame sent before an acknowledged one has waited the time threshold and counts as lost (QUIC's loss timer). */
  private lossDeadline: number | undefined
  private latestRtt = 0
  private recoveryStartTx = 0
  /** Latest send time of any frame acknowledged so far: persistent congestion only counts frames sent after it. */
  private ackedSentAt = -Infinity
  /** When the first RTT sample was taken: persistent congestion needs one from before the lost frames were sent. */
  private firstSampleAt: number | undefined
  private cwnd: number
  private ssthresh = Infinity
  private peerLimit: number
  private srtt: number | undefined
  private rttvar: number | undefined
  private minRtt = Infinity
  private rto: number
  private backoff = 0
  private rtoDeadline: number | undefined
  private helloDeadline: number | undefined
  /** Hellos sent since the peer's epoch was last unknown and a path last came back, none answered yet. */
  private hellosUnanswered = 0
  private readonly ackedIds: string[] = []

  // ── receive side ──
  /** Bumped when the peer's stream restarts, so a delivery of the old stream settling late changes nothing. */
  private rxGeneration = 0
  /** Seq of the first message not yet delivered: the cumulative ack. */
  private rxDeliverBase = 0
  /** Seq of the first message not yet assembled. */
  private rxBoundary = 0
  private readonly partials = new Map<number, Partial>()
  private deliveryQueue: Assembled[] = []
  private delivering = false
  private retryAt: number | undefined
  private bufferedFrames = 0
  private bufferedBytes = 0
  private ackDue: number | undefined
  private unackedFrames = 0
  private largestRecvSeq = -1
  private largestRecvAt: number | undefined

  private readonly counters = {
    dataFramesSent: 0,
    ackFramesSent: 0,
    retransmissions: 0,
    fastRetransmits: 0,
    timeouts: 0,
    framesReceived: 0,
    duplicates: 0,
    dropped: 0,
    deduplicated: 0,
    delivered: 0,
    streamResets: 0,
  }

  constructor(options: ReliableLinkOptions) {
    const problems: string[] = []
    const tuning = { ...DEFAULTS }
    for (const key of Object.keys(DEFAULTS) as (keyof Tuning)[]) {
      const value = options[key]
      if (value === undefined) continue
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        problems.push(`${key} must be a positive integer, got ${String(value)}`)
      } else tuning[key] = value
    }
    if (!Number.isInteger(options.epoch) || options.epoch < 1 || options.epoch > U32_MAX) {
      problems.push(`epoch must be an integer in 1..${U32_MAX}, got ${String(options.epoch)}`)
    }
    for (const key of ['clock', 'output', 'deliver'] as const) {
      if (typeof options[key] !== 'function') problems.push(`${key} must be a function`)
    }
    if (!options.store || typeof options.store.seen !== 'function' || typeof options.store.markDelivered !== 'function') {
      problems.push('store must have seen(id) and markDelivered(id)')
    }
    const window = Math.min(tuning.windowFrames, Math.floor(tuning.maxBufferedBytes / tuning.maxFrameBytes))
    const largest = fragmentCount(tuning.maxMessageBytes, MAX_ID_BYTES, tuning.maxFrameBytes)
    if (tuning.maxFrameBytes <= dataOverhead(MAX_ID_BYTES, undefined)) {
      problems.push(`maxFrameBytes must exceed ${dataOverhead(MAX_ID_BYTES, undefined)} (header and longest id)`)
    } else if (window < largest) {
      problems.push(
        `windowFrames (${tuning.windowFrames}) and maxBufferedBytes (${tuning.maxBufferedBytes}) allow ${window} frames; ` +
          `a ${tuning.maxMessageBytes}-byte message needs ${largest}`,
      )
    }
    if (tuning.windowFrames > 0x7fff) problems.push('windowFrames must be at most 32767 (SACK offsets are 16 bits)')
    if (tuning.minWindow > tuning.initialWindow || tuning.initialWindow > tuning.maxWindow) {
      problems.push('congestion windows must satisfy minWindow <= initialWindow <= maxWindow')
    }
    if (tuning.minRtoMs > tuning.initialRtoMs || tuning.initialRtoMs > tuning.maxRtoMs) {
      problems.push('timeouts must satisfy minRtoMs <= initialRtoMs <= maxRtoMs')
    }
    if (problems.length > 0) throw new TypeError(`ReliableLink options are invalid:\n  - ${problems.join('\n  - ')}`)

    this.epoch = options.epoch
    this.tuning = tuning
    this.window = window
    this.clock = options.clock
    this.output = options.output
    this.deliverFn = options.deliver
    this.store = options.store
    this.onAcked = options.onAcked
    this.onError = options.onError
    this.onDeadline = options.onDeadline
    this.cwnd = tuning.initialWindow
    this.peerLimit = tuning.initialWindow
    this.rto = tuning.initialRtoMs
  }

  /**
   * Queues a message for the peer. `id` must be unique per link (1..255 bytes of UTF-8); the app persists
   * (id, payload) until `onAcked(id)` and, after its own restart, submits them again in the same order.
   */
  submit(id: string, payload: Buffer): void {
    if (this.closed) throw new Error(`reliable: cannot submit "${id}": the link is closed`)
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('reliable: message id must be a non-empty string')
    const idBytes = Buffer.byteLength(id, 'utf8')
    if (idBytes > MAX_ID_BYTES) throw new RangeError(`reliable: message id "${id.slice(0, 40)}…" is ${idBytes} bytes; at most ${MAX_ID_BYTES}`)
    if (!Buffer.isBuffer(payload)) throw new TypeError(`reliable: payload of "${id}" must be a Buffer`)
    if (payload.length > this.tuning.maxMessageBytes) {
      throw new RangeError(
        `reliable: message "${id}" is ${payload.length} bytes; the limit is ${this.tuning.maxMessageBytes} (maxMessageBytes)`,
      )
    }
    if (this.outboxIds.has(id)) throw new Error(`reliable: message "${id}" is already queued on this link`)
    const message: OutMessage = { id, payload, end: 0 }
    this.fragment(message)
    this.outbox.push(message)
    this.outboxIds.add(id)
    this.flush(this.clock())
    this.finish()
  }

  /**
   * Takes one plaintext frame from the peer. Throws FrameError for a malformed or impossible frame, in which case
   * nothing changed; any other outcome is returned.
   */
  receive(bytes: Uint8Array): ReceiveOutcome {
    if (this.closed) return 'closed'
    const frame = decodeFrame(bytes, this.tuning.maxFrameBytes)
    const now = this.clock()
    if (frame.epoch < this.peerEpoch) {
      this.counters.dropped++
      return 'stale'
    }
    const restarted = frame.epoch > this.peerEpoch && this.peerEpoch !== 0
    const addressed = frame.peerEpoch === this.epoch
    // Check everything against the state the frame will meet, before changing any of it.
    let dataVerdict: DataVerdict | undefined
    if (addressed) {
      if (frame.ack) this.checkAck(frame.ack, restarted)
      if (frame.kind === 'data') dataVerdict = this.checkData(frame, restarted)
    }

    if (frame.epoch > this.peerEpoch) this.learnPeer(frame.epoch)
    let outcome: ReceiveOutcome
    if (!addressed) {
      // The peer does not know this incarnation yet: tell it at once; its frames are for someone else.
      this.counters.dropped++
      this.ackDue = now
      outcome = 'unaddressed'
    } else {
      if (frame.ack) this.applyAck(frame.ack, now)
      outcome = frame.kind === 'data' ? this.acceptData(frame, dataVerdict ?? 'new', now) : 'ack'
    }
    this.flush(now)
    this.finish()
    return outcome
  }

  /** Runs what is due: ACKs, retransmissions, hellos, delivery retries. Call at `nextDeadline()`; early is harmless. */
  tick(): void {
    if (this.closed) return
    const now = this.clock()
    if (this.lossDeadline !== undefined && this.lossDeadline <= now) this.detectLosses(now, Infinity)
    if (this.rtoDeadline !== undefined && this.rtoDeadline <= now) this.onTimeout(now)
    if (this.helloDeadline !== undefined && this.helloDeadline <= now) {
      this.helloDeadline = undefined
      if (++this.hellosUnanswered > HELLO_STEADY_TRIES) this.backoff++
    }
    if (this.retryAt !== undefined && this.retryAt <= now) {
      this.retryAt = undefined
      this.pump()
    }
    this.flush(now)
    this.finish()
  }

  /** When `tick` is next needed (on the `clock` scale), or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    if (this.closed) return undefined
    let deadline: number | undefined
    for (const at of [this.ackDue, this.rtoDeadline, this.lossDeadline, this.helloDeadline, this.retryAt]) {
      if (at !== undefined && (deadline === undefined || at < deadline)) deadline = at
    }
    return deadline
  }

  /**
   * A path to the peer exists again after none did. The timeouts that backed off meanwhile (hellos and probes doubling
   * up to maxRtoMs) measured the missing path, not the network: they start afresh, so a frame or hello lost after the
   * return is resent within one RTO instead of the backed-off one (seconds). Nothing is sent here.
   */
  pathRestored(): void {
    if (this.closed || (this.backoff === 0 && this.hellosUnanswered === 0)) return
    this.backoff = 0
    this.hellosUnanswered = 0
    const now = this.clock()
    if (this.rtoDeadline !== undefined) this.rtoDeadline = Math.min(this.rtoDeadline, now + this.currentRto())
    if (this.helloDeadline !== undefined) this.helloDeadline = Math.min(this.helloDeadline, now + this.helloTimeout())
    this.finish()
  }

  /** Messages submitted and not yet acknowledged, in order: what the app must still hold durably. */
  unacked(): { id: string; payload: Buffer }[] {
    return [...this.outbox].map(({ id, payload }) => ({ id, payload }))
  }

  /** Stops for good: no more output, callbacks or deadlines. A delivery in progress may still settle in the app. */
  close(): void {
    this.closed = true
    this.finish()
  }

  stats(): ReliableLinkStats {
    return {
      ...this.counters,
      backoff: this.backoff,
      srtt: this.srtt,
      rttvar: this.rttvar,
      rto: this.currentRto(),
      cwnd: this.cwnd,
      inFlight: this.inFlight,
      peerEpoch: this.peerEpoch,
      queuedMessages: this.outbox.length,
      bufferedFrames: this.bufferedFrames,
      bufferedBytes: this.bufferedBytes,
    }
  }

  // ── send side ──

  private fragment(message: OutMessage): void {
    const idBytes = Buffer.byteLength(message.id)
    const count = fragmentCount(message.payload.length, idBytes, this.tuning.maxFrameBytes)
    if (this.nextSeq + count > U32_MAX) throw new RangeError('reliable: stream ran out of sequence numbers; restart the link')
    const first = this.tuning.maxFrameBytes - dataOverhead(idBytes, undefined)
    const rest = this.tuning.maxFrameBytes - dataOverhead(undefined, undefined)
    let offset = 0
    for (let i = 0; i < count; i++) {
      const size = i === 0 ? first : rest
      this.frames.push({
        seq: this.nextSeq++,
        message,
        fragIndex: i,
        fragCount: count,
        chunk: count === 1 ? message.payload : message.payload.subarray(offset, offset + size),
        sent: false,
        sentAt: 0,
        tx: 0,
        retransmitted: false,
        acked: false,
        inFlight: false,
        lost: false,
      })
      offset += size
    }
    message.end = this.nextSeq
  }

  private frameAt(seq: number): SendFrame {
    return this.frames[this.head + seq - this.sndUna]
  }

  /** Sends what the windows allow, and an ACK if one is due. */
  private flush(now: number): void {
    if (this.closed) return
    if (this.peerEpoch === 0) {
      // Data frames name the peer's epoch, so learn it first: an ACK frame with peerEpoch 0 is the hello.
      if (this.outbox.length > 0 && this.helloDeadline === undefined) {
        this.sendAck(now)
        this.helloDeadline = now + this.helloTimeout()
      }
    } else {
      while (this.inFlight < Math.floor(this.cwnd)) {
        const frame = this.nextRetransmission() ?? this.nextNewFrame()
        if (!frame) break
        this.sendData(frame, now)
      }
    }
    if (this.ackDue !== undefined && this.ackDue <= now) this.sendAck(now)
  }

  private nextRetransmission(): SendFrame | undefined {
    while (this.retransmitQueue.length > 0) {
      const frame = this.retransmitQueue.shift() as SendFrame
      if (frame.lost && !frame.acked && frame.seq >= this.sndUna) return frame
    }
    return undefined
  }

  private nextNewFrame(): SendFrame | undefined {
    if (this.sentUpTo >= this.nextSeq || this.sentUpTo >= this.peerLimit) return undefined
    return this.frameAt(this.sentUpTo)
  }

  private sendData(frame: SendFrame, now: number): void {
    const idBytes = frame.fragIndex === 0 ? Buffer.byteLength(frame.message.id) : undefined
    let ack: AckBlock | undefined
    if (this.ackDue !== undefined) {
      // Piggyback a pending ACK when it fits beside the payload.
      const candidate = this.buildAck(now)
      if (dataOverhead(idBytes, candidate) + frame.chunk.length <= this.tuning.maxFrameBytes) ack = candidate
    }
    const bytes = encodeFrame({
      kind: 'data',
      epoch: this.epoch,
      peerEpoch: this.peerEpoch,
      seq: frame.seq,
      fragIndex: frame.fragIndex,
      fragCount: frame.fragCount,
      id: frame.fragIndex === 0 ? frame.message.id : undefined,
      ack,
      payload: frame.chunk,
    })
    if (ack) this.ackSent()
    if (frame.sent) {
      frame.retransmitted = true
      this.counters.retransmissions++
    }
    frame.sent = true
    frame.sentAt = now
    frame.tx = ++this.txCounter
    frame.lost = false
    // A probe of an already acknowledged frame is not in flight: no ACK will count it off again.
    if (!frame.acked && !frame.inFlight) {
      frame.inFlight = true
      this.inFlight++
    }
    if (frame.seq >= this.sentUpTo) this.sentUpTo = frame.seq + 1
    if (this.rtoDeadline === undefined) this.rtoDeadline = now + this.currentRto()
    this.counters.dataFramesSent++
    this.output(bytes)
  }

  /** Throws FrameError if the ack cannot be about this stream; `fresh`: as the stream will be after a reset. */
  private checkAck(ack: AckBlock, fresh: boolean): void {
    const sent = fresh ? 0 : this.sentUpTo
    const last = ack.ranges.length > 0 ? ack.ranges[ack.ranges.length - 1] : undefined
    if (ack.cum > sent || (last && last.start + last.length > sent)) {
      throw new FrameError('protocol', `ack covers seq ${Math.max(ack.cum, last ? last.start + last.length : 0) - 1}, never sent`)
    }
    if (!fresh && ack.cum > this.sndUna && this.frameAt(ack.cum - 1).fragIndex !== this.frameAt(ack.cum - 1).fragCount - 1) {
      throw new FrameError('protocol', `cumulative ack ${ack.cum} splits a message`)
    }
  }

  private applyAck(ack: AckBlock, now: number): void {
    if (ack.limit > this.peerLimit) this.peerLimit = ack.limit
    const unaBefore = this.sndUna
    let newlyAcked = 0
    let largestNewly: SendFrame | undefined
    const ackedSentBefore = this.ackedSentAt
    let earliestNewlySent = Infinity
    const mark = (frame: SendFrame): void => {
      if (frame.acked) return
      frame.acked = true
      earliestNewlySent = Math.min(earliestNewlySent, frame.sentAt)
      this.ackedSentAt = Math.max(this.ackedSentAt, frame.sentAt)
      frame.lost = false
      if (frame.inFlight) {
        frame.inFlight = false
        this.inFlight--
        newlyAcked++
      }
      if (frame.tx > this.largestAckedTx) this.largestAckedTx = frame.tx
      if (!largestNewly || frame.seq > largestNewly.seq) largestNewly = frame
    }
    for (const range of ack.ranges) {
      for (let seq = Math.max(range.start, this.sndUna); seq < range.start + range.length; seq++) mark(this.frameAt(seq))
    }
    for (let seq = this.sndUna; seq < ack.cum; seq++) mark(this.frameAt(seq))
    if (ack.cum > this.sndUna) this.advanceUna(ack.cum)

    const largestInAck = Math.max(ack.cum - 1, ...ack.ranges.map((r) => r.start + r.length - 1))
    const sample = largestNewly as SendFrame | undefined
    if (sample && sample.seq === largestInAck && !sample.retransmitted && ack.ackDelay <= this.tuning.ackDelayMs + ACK_DELAY_SLACK_MS) {
      // Karn: only frames sent once give samples; the peer's hold time is not path delay. An ACK that reports holding
      // its largest frame longer than the ACK delay repeats a lost ACK: its sample measures the loss, not the path,
      // and under heavy loss such samples inflate the RTO until the link crawls.
      this.updateRtt(now - sample.sentAt, Math.min(ack.ackDelay, this.tuning.ackDelayMs))
    }
    if (newlyAcked > 0) {
      this.cwnd += this.cwnd < this.ssthresh ? newlyAcked : newlyAcked / this.cwnd
      this.cwnd = Math.min(this.cwnd, this.tuning.maxWindow)
    }
    if (largestNewly) this.detectLosses(now, earliestNewlySent, ackedSentBefore)
    // RFC 6298 5.2/5.3: stop the timer when nothing is outstanding, restart it when an ACK brings progress.
    if (this.sndUna >= this.sentUpTo) this.rtoDeadline = undefined
    else if (largestNewly || ack.cum > unaBefore) this.rtoDeadline = now + this.currentRto()
  }

  private advanceUna(cum: number): void {
    this.head += cum - this.sndUna
    this.sndUna = cum
    if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head)
      this.head = 0
    }
    for (let first = this.outbox.peek(); first && first.end <= cum; first = this.outbox.peek()) {
      const message = this.outbox.shift() as OutMessage
      this.outboxIds.delete(message.id)
      this.ackedIds.push(message.id)
    }
  }

  /**
   * QUIC loss detection (RFC 9002 §6.1). `ackedFrom`..`ackedUntil`: send times between the latest frame acknowledged
   * before this ACK and the earliest one it acknowledges; only losses inside can be persistent congestion.
   */
  private detectLosses(now: number, ackedUntil: number, ackedFrom = this.ackedSentAt): void {
    let congestion = false
    let lostFrom = Infinity
    let lostUntil = -Infinity
    this.lossDeadline = undefined
    // QUIC's time threshold as well as the packet threshold: with a small window (heavy loss) fewer than 3 frames
    // follow a lost one, and without it every loss would wait for a retransmission timeout.
    const lossDelay = Math.max(GRANULARITY_MS, (9 / 8) * Math.max(this.srtt ?? this.tuning.initialRtoMs, this.latestRtt))
    for (let seq = this.sndUna; seq < this.sentUpTo; seq++) {
      const frame = this.frameAt(seq)
      if (!frame.inFlight || frame.tx >= this.largestAckedTx) continue
      if (frame.tx + PACKET_THRESHOLD > this.largestAckedTx && frame.sentAt + lossDelay > now) {
        const at = frame.sentAt + lossDelay
        if (this.lossDeadline === undefined || at < this.lossDeadline) this.lossDeadline = at
        continue
      }
      frame.inFlight = false
      frame.lost = true
      this.inFlight--
      this.retransmitQueue.push(frame)
      this.counters.fastRetransmits++
      if (frame.tx >= this.recoveryStartTx) congestion = true
      if (frame.sentAt > ackedFrom && frame.sentAt < ackedUntil) {
        lostFrom = Math.min(lostFrom, frame.sentAt)
        lostUntil = Math.max(lostUntil, frame.sentAt)
      }
    }
    if (congestion) {
      // One multiplicative decrease per round trip of losses: frames sent before the last decrease do not count again.
      this.ssthresh = Math.max(this.cwnd / 2, this.tuning.minWindow)
      this.cwnd = this.ssthresh
      this.recoveryStartTx = this.txCounter + 1
    }
    // Persistent congestion (RFC 9002 §7.6): every frame sent over ~3 probe timeouts was lost, and an RTT sample
    // existed before they left. Only this shrinks the window to its floor; a timeout alone does not.
    const period = PERSISTENT_CONGESTION_PTOS * Math.max(this.tuning.minRtoMs, this.rto)
    if (this.firstSampleAt !== undefined && lostFrom > this.firstSampleAt && lostUntil - lostFrom > period) {
      this.ssthresh = Math.max(Math.min(this.ssthresh, this.cwnd / 2), this.tuning.minWindow)
      this.cwnd = this.tuning.minWindow
      this.recoveryStartTx = this.txCounter + 1
    }
    this.retransmitQueue.sort((a, b) => a.seq - b.seq)
  }

  /**
   * A probe timeout (RFC 9002 §6.2): nothing was acknowledged for a PTO. It says only that ACKs stopped (a tail
   * loss, a slow peer or a busy loop on either side), not which frames were lost, so it changes no window: it sends up
   * to two probes, beyond the congestion window, and the ACKs they draw let loss detection find what was lost.
   */
  private onTimeout(now: number): void {
    this.counters.timeouts++
    this.backoff++
    let next = this.sndUna
    for (let probes = 0; probes < PROBE_FRAMES; probes++) {
      // New data first, as QUIC does; else the oldest frames still unacknowledged.
      let frame = this.nextRetransmission() ?? this.nextNewFrame()
      while (!frame && next < this.sentUpTo) {
        const candidate = this.frameAt(next++)
        if (candidate.inFlight) frame = candidate
      }
      if (!frame) {
        // Everything sent was received but not yet delivered (or the ACK saying so was lost): probe the oldest.
        if (probes === 0 && this.sndUna < this.sentUpTo) this.sendData(this.frameAt(this.sndUna), now)
        break
      }
      this.sendData(frame, now)
    }
    this.rtoDeadline = this.sndUna < this.sentUpTo ? now + this.currentRto() : undefined
  }

  private updateRtt(sample: number, ackDelay: number): void {
    this.latestRtt = sample
    this.minRtt = Math.min(this.minRtt, sample)
    const adjusted = sample - ackDelay >= this.minRtt ? sample - ackDelay : sample
    if (this.srtt === undefined || this.rttvar === undefined) {
      this.srtt = adjusted
      this.rttvar = adjusted / 2
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - adjusted)
      this.srtt = 0.875 * this.srtt + 0.125 * adjusted
    }
    // RFC 6298 plus the peer's ack delay, as QUIC's PTO adds max_ack_delay.
    this.rto = this.srtt + Math.max(GRANULARITY_MS, 4 * this.rttvar) + this.tuning.ackDelayMs
    this.backoff = 0
    this.firstSampleAt ??= this.clock()
  }

  /** How long a hello waits for its answer: a steady short pace at first, then the backed-off RTO. */
  private helloTimeout(): number {
    if (this.hellosUnanswered >= HELLO_STEADY_TRIES) return this.currentRto()
    return Math.max(this.tuning.minRtoMs, Math.min(HELLO_INTERVAL_MS, this.rto))
  }

  private currentRto(): number {
    const { minRtoMs, maxRtoMs } = this.tuning
    return Math.min(maxRtoMs, Math.max(minRtoMs, this.rto) * 2 ** Math.min(this.backoff, 20))
  }

  /** The peer's epoch went up: it restarted, so both streams start over (its receiver lost what it held). */
  private learnPeer(epoch: number): void {
    if (this.peerEpoch !== 0) {
      this.counters.streamResets++
      this.resetSendStream()
      this.resetReceiveStream()
    }
    this.peerEpoch = epoch
    this.helloDeadline = undefined
    this.hellosUnanswered = 0
    this.backoff = 0
  }

  private resetSendStream(): void {
    this.frames = []
    this.head = 0
    this.sndUna = 0
    this.nextSeq = 0
    this.sentUpTo = 0
    this.retransmitQueue = []
    this.inFlight = 0
    this.largestAckedTx = 0
    this.recoveryStartTx = this.txCounter + 1
    this.cwnd = this.tuning.initialWindow
    this.ssthresh = Infinity
    this.peerLimit = this.tuning.initialWindow
    this.rtoDeadline = undefined
    this.lossDeadline = undefined
    this.backoff = 0
    for (const message of this.outbox) this.fragment(message)
  }

  private resetReceiveStream(): void {
    this.rxGeneration++
    this.rxDeliverBase = 0
    this.rxBoundary = 0
    this.partials.clear()
    this.deliveryQueue = []
    this.retryAt = undefined
    this.bufferedFrames = 0
    this.bufferedBytes = 0
    this.ackDue = undefined
    this.unackedFrames = 0
    this.largestRecvSeq = -1
    this.largestRecvAt = undefined
  }

  // ── receive side ──

  /** Throws FrameError if the frame contradicts the stream; `fresh`: as the stream will be after a reset. */
  private checkData(frame: DataFrame, fresh: boolean): DataVerdict {
    const boundary = fresh ? 0 : this.rxBoundary
    const base = fresh ? 0 : this.rxDeliverBase
    const start = frame.seq - frame.fragIndex
    if (frame.fragCount > this.window) {
      throw new FrameError('protocol', `message of ${frame.fragCount} fragments cannot fit the ${this.window}-frame window`)
    }
    if (frame.seq < boundary) return 'duplicate'
    if (start < boundary) throw new FrameError('protocol', `fragment at seq ${frame.seq} claims a message that starts before ${boundary}`)
    if (frame.seq >= base + this.window) return 'beyond-window'
    if (fresh) return 'new'
    const existing = this.partials.get(start)
    if (existing) {
      if (existing.count !== frame.fragCount) {
        throw new FrameError('protocol', `fragment at seq ${frame.seq} says ${frame.fragCount} fragments; earlier ones said ${existing.count}`)
      }
      return existing.frags[frame.fragIndex] ? 'duplicate' : 'new'
    }
    for (const other of this.partials.values()) {
      if (start < other.start + other.count && other.start < start + frame.fragCount) {
        throw new FrameError('protocol', `fragment at seq ${frame.seq} overlaps the message at seq ${other.start}`)
      }
    }
    return 'new'
  }

  private acceptData(frame: DataFrame, verdict: DataVerdict, now: number): ReceiveOutcome {
    this.counters.framesReceived++
    const inOrder = frame.seq === this.largestRecvSeq + 1
    if (frame.seq > this.largestRecvSeq) {
      this.largestRecvSeq = frame.seq
      this.largestRecvAt = now
    }
    this.unackedFrames++
    let outcome: ReceiveOutcome = 'accepted'
    if (verdict === 'duplicate') {
      this.counters.duplicates++
      outcome = 'duplicate'
    } else if (verdict === 'beyond-window' || this.bufferedBytes + frame.payload.length > this.tuning.maxBufferedBytes) {
      this.counters.dropped++
      outcome = 'dropped'
    } else {
      const start = frame.seq - frame.fragIndex
      let partial = this.partials.get(start)
      if (!partial) {
        partial = { start, count: frame.fragCount, frags: new Array<Buffer | undefined>(frame.fragCount), have: 0 }
        this.partials.set(start, partial)
      }
      // Copy: the caller's datagram buffer may be reused, and a slice would pin all of it.
      partial.frags[frame.fragIndex] = Buffer.from(frame.payload)
      partial.have++
      if (frame.fragIndex === 0) partial.id = frame.id
      this.bufferedFrames++
      this.bufferedBytes += frame.payload.length
      this.assemble()
      this.pump()
    }
    // Out of order, duplicates and drops are acknowledged at once, so the sender repairs quickly; the rest is batched.
    if (outcome !== 'accepted' || !inOrder || this.unackedFrames >= this.tuning.ackEveryFrames) this.ackDue = now
    else this.scheduleAck(now)
    return outcome
  }

  private scheduleAck(now: number): void {
    const due = now + this.tuning.ackDelayMs
    if (this.ackDue === undefined || due < this.ackDue) this.ackDue = due
  }

  private assemble(): void {
    for (;;) {
      const partial = this.partials.get(this.rxBoundary)
      if (!partial || partial.have < partial.count) return
      this.partials.delete(partial.start)
      const payload = Buffer.concat(partial.frags as Buffer[])
      const discard = payload.length > this.tuning.maxMessageBytes
      if (discard) {
        this.report(new FrameError('protocol', `message "${partial.id}" is ${payload.length} bytes; at most ${this.tuning.maxMessageBytes}`))
      }
      this.deliveryQueue.push({ start: partial.start, count: partial.count, id: partial.id as string, payload, discard })
      this.rxBoundary += partial.count
    }
  }

  /** Delivers assembled messages one at a time, in order; the next waits until the previous one settled. */
  private pump(): void {
    while (!this.delivering && !this.closed && this.retryAt === undefined && this.deliveryQueue.length > 0) {
      const message = this.deliveryQueue[0]
      if (message.discard || this.store.seen(message.id)) {
        if (!message.discard) this.counters.deduplicated++
        this.delivered(message)
        continue
      }
      const generation = this.rxGeneration
      let synchronous = true
      this.delivering = true
      const settle = (error?: unknown): void => {
        this.delivering = false
        if (generation === this.rxGeneration) {
          if (error === undefined) {
            this.counters.delivered++
            this.delivered(message)
          } else {
            this.retryAt = this.clock() + this.tuning.deliveryRetryMs
            // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a tap may throw a non-Error; its text is all there is
            const reason = error instanceof Error ? error.message : String(error)
            this.report(new Error(`reliable: delivering message "${message.id}" failed, retrying: ${reason}`, { cause: error }))
          }
        }
        if (!synchronous) {
          // Settled outside any call into the link: continue here and tell the owner about new deadlines.
          this.pump()
          this.flush(this.clock())
          this.finish()
        }
      }
      runSteps([() => this.deliverFn(message.id, message.payload), () => this.store.markDelivered(message.id)], settle)
      synchronous = false
      if (this.delivering) return
    }
  }

  private delivered(message: Assembled): void {
    this.deliveryQueue.shift()
    this.rxDeliverBase = message.start + message.count
    this.bufferedFrames -= message.count
    this.bufferedBytes -= message.payload.length
    this.scheduleAck(this.clock())
  }

  private buildAck(now: number): AckBlock {
    const cum = this.rxDeliverBase
    const ranges: SackRange[] = []
    const add = (start: number, length: number): void => {
      const last = ranges[ranges.length - 1]
      if (last && last.start + last.length === start) last.length += length
      else ranges.push({ start, length })
    }
    // Assembled but undelivered messages are received: the sender must not resend them, only wait.
    if (this.rxBoundary > cum) add(cum, this.rxBoundary - cum)
    const partials = [...this.partials.values()].sort((a, b) => a.start - b.start)
    for (const partial of partials) {
      for (let i = 0; i < partial.count; i++) if (partial.frags[i]) add(partial.start + i, 1)
    }
    return {
      cum,
      limit: Math.min(U32_MAX, cum + this.window),
      ackDelay: this.largestRecvAt === undefined ? 0 : now - this.largestRecvAt,
      ranges: ranges.slice(0, MAX_SACK_RANGES),
    }
  }

  private sendAck(now: number): void {
    const bytes = encodeFrame({ kind: 'ack', epoch: this.epoch, peerEpoch: this.peerEpoch, ack: this.buildAck(now) })
    this.ackSent()
    this.counters.ackFramesSent++
    this.output(bytes)
  }

  private ackSent(): void {
    this.ackDue = undefined
    this.unackedFrames = 0
  }

  private report(error: Error): void {
    this.onError?.(error)
  }

  /** Ends every public call: fires onAcked outside the state changes, then reports a moved deadline. */
  private finish(): void {
    while (this.ackedIds.length > 0 && !this.closed) this.onAcked?.(this.ackedIds.shift() as string)
    const deadline = this.nextDeadline()
    if (deadline !== this.lastDeadline) {
      this.lastDeadline = deadline
      this.onDeadline?.(deadline)
    }
  }
}

type DataVerdict = 'new' | 'duplicate' | 'beyond-window'

/** Fragments a message of `payloadBytes` needs: fragment 0 also carries the id. */
export function fragmentCount(payloadBytes: number, idBytes: number, maxFrameBytes: number): number {
  const first = maxFrameBytes - dataOverhead(idBytes, undefined)
  const rest = maxFrameBytes - dataOverhead(undefined, undefined)
  return payloadBytes <= first ? 1 : 1 + Math.ceil((payloadBytes - first) / rest)
}

/** Runs steps in order; a step returning a promise defers the rest. Calls `done` once, with the error if one failed. */
function runSteps(steps: (() => unknown)[], done: (error?: unknown) => void, from = 0): void {
  for (let i = from; i < steps.length; i++) {
    let result: unknown
    try {
      result = steps[i]()
    } catch (error) {
      done(error ?? new Error('step threw a falsy value'))
      return
    }
    if (isThenable(result)) {
      result.then(
        () => runSteps(steps, done, i + 1),
        (error: unknown) => done(error ?? new Error('promise rejected with a falsy value')),
      )
      return
    }
  }
  done()
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}
