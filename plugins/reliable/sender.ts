// The send side of a ReliableLink: the outbox, fragmentation, the congestion window, RTT and retransmission timeouts,
// QUIC loss detection, and the hellos that learn the peer's epoch. Pure: time is passed in, frames leave via `output`.
import { type AckBlock, FrameError, dataOverhead, encodeFrame } from '../../protocol/reliable'
import { type LinkCounters, type ReliableLinkStats, type Tuning, U32_MAX, fragmentCount } from './options'
import { Fifo } from '../../core'

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

/** What the send side needs from the link it belongs to. */
export interface SenderContext {
  epoch: number
  tuning: Tuning
  counters: LinkCounters
  clock: () => number
  output: (frame: Buffer) => void
  /** The peer's epoch as known now; 0 while unknown. */
  peerEpoch: () => number
  /** A pending ACK to ride on a DATA frame, if one is due and `fits`; taking it marks it sent. */
  piggybackAck: (now: number, fits: (ack: AckBlock) => boolean) => AckBlock | undefined
}

export class Sender {
  private readonly context: SenderContext
  private readonly tuning: Tuning
  private readonly counters: LinkCounters
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
  /** Ids the peer acknowledged, in order, not yet reported to the owner. */
  readonly ackedIds: string[] = []

  constructor(context: SenderContext) {
    this.context = context
    this.tuning = context.tuning
    this.counters = context.counters
    this.cwnd = this.tuning.initialWindow
    this.peerLimit = this.tuning.initialWindow
    this.rto = this.tuning.initialRtoMs
  }

  has(id: string): boolean {
    return this.outboxIds.has(id)
  }

  /** Queues a checked message at the end of the stream. */
  enqueue(id: string, payload: Buffer): void {
    const message: OutMessage = { id, payload, end: 0 }
    this.fragment(message)
    this.outbox.push(message)
    this.outboxIds.add(id)
  }

  get queuedMessages(): number {
    return this.outbox.length
  }

  unacked(): { id: string; payload: Buffer }[] {
    return [...this.outbox].map(({ id, payload }) => ({ id, payload }))
  }

  /** The sender's deadlines: retransmission, loss and hello timers. */
  deadlines(): (number | undefined)[] {
    return [this.rtoDeadline, this.lossDeadline, this.helloDeadline]
  }

  stats(): Pick<ReliableLinkStats, 'backoff' | 'srtt' | 'rttvar' | 'rto' | 'cwnd' | 'inFlight' | 'queuedMessages'> {
    return {
      backoff: this.backoff,
      srtt: this.srtt,
      rttvar: this.rttvar,
      rto: this.currentRto(),
      cwnd: this.cwnd,
      inFlight: this.inFlight,
      queuedMessages: this.outbox.length,
    }
  }

  /** Whether a hello is due (the peer's epoch is unknown and messages wait). The link sends it: an ACK with peerEpoch 0. */
  helloDue(): boolean {
    return this.outbox.length > 0 && this.helloDeadline === undefined
  }

  /** A hello went out: wait for its answer. */
  helloSent(now: number): void {
    this.helloDeadline = now + this.helloTimeout()
  }

  /** Sends what the congestion window and the peer's limit allow. */
  sendWindow(now: number): void {
    while (this.inFlight < Math.floor(this.cwnd)) {
      const frame = this.nextRetransmission() ?? this.nextNewFrame()
      if (!frame) break
      this.sendData(frame, now)
    }
  }

  /** Runs the sender's timers that are due. */
  tick(now: number): void {
    if (this.lossDeadline !== undefined && this.lossDeadline <= now) this.detectLosses(now, Infinity)
    if (this.rtoDeadline !== undefined && this.rtoDeadline <= now) this.onTimeout(now)
    if (this.helloDeadline !== undefined && this.helloDeadline <= now) {
      this.helloDeadline = undefined
      if (++this.hellosUnanswered > HELLO_STEADY_TRIES) this.backoff++
    }
  }

  /** A path came back: timeouts that backed off while none existed start afresh. False when nothing changed. */
  pathRestored(now: number): boolean {
    if (this.backoff === 0 && this.hellosUnanswered === 0) return false
    this.backoff = 0
    this.hellosUnanswered = 0
    if (this.rtoDeadline !== undefined) this.rtoDeadline = Math.min(this.rtoDeadline, now + this.currentRto())
    if (this.helloDeadline !== undefined) this.helloDeadline = Math.min(this.helloDeadline, now + this.helloTimeout())
    return true
  }

  /** The peer's epoch became known (or went up): hellos stop; `restarted` starts the stream over. */
  learnPeer(restarted: boolean): void {
    if (restarted) this.resetStream()
    this.helloDeadline = undefined
    this.hellosUnanswered = 0
    this.backoff = 0
  }

  private fragment(message: OutMessage): void {
    const idBytes = Buffer.byteLength(message.id)
    const count = fragmentCount(message.payload.length, idBytes, this.tuning.maxFrameBytes)
    if (this.nextSeq + count > U32_MAX)
      throw new RangeError('reliable: stream ran out of sequence numbers; restart the link')
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
    // Piggyback a pending ACK when it fits beside the payload.
    const ack = this.context.piggybackAck(
      now,
      (candidate) => dataOverhead(idBytes, candidate) + frame.chunk.length <= this.tuning.maxFrameBytes,
    )
    const bytes = encodeFrame({
      kind: 'data',
      epoch: this.context.epoch,
      peerEpoch: this.context.peerEpoch(),
      seq: frame.seq,
      fragIndex: frame.fragIndex,
      fragCount: frame.fragCount,
      id: frame.fragIndex === 0 ? frame.message.id : undefined,
      ack,
      payload: frame.chunk,
    })
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
    this.context.output(bytes)
  }

  /** Throws FrameError if the ack cannot be about this stream; `fresh`: as the stream will be after a reset. */
  checkAck(ack: AckBlock, fresh: boolean): void {
    const sent = fresh ? 0 : this.sentUpTo
    const last = ack.ranges.length > 0 ? ack.ranges[ack.ranges.length - 1] : undefined
    if (ack.cum > sent || (last && last.start + last.length > sent)) {
      throw new FrameError(
        'protocol',
        `ack covers seq ${Math.max(ack.cum, last ? last.start + last.length : 0) - 1}, never sent`,
      )
    }
    if (
      !fresh &&
      ack.cum > this.sndUna &&
      this.frameAt(ack.cum - 1).fragIndex !== this.frameAt(ack.cum - 1).fragCount - 1
    ) {
      throw new FrameError('protocol', `cumulative ack ${ack.cum} splits a message`)
    }
  }

  applyAck(ack: AckBlock, now: number): void {
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
      for (let seq = Math.max(range.start, this.sndUna); seq < range.start + range.length; seq++)
        mark(this.frameAt(seq))
    }
    for (let seq = this.sndUna; seq < ack.cum; seq++) mark(this.frameAt(seq))
    if (ack.cum > this.sndUna) this.advanceUna(ack.cum)

    const largestInAck = Math.max(ack.cum - 1, ...ack.ranges.map((r) => r.start + r.length - 1))
    const sample = largestNewly as SendFrame | undefined
    if (
      sample &&
      sample.seq === largestInAck &&
      !sample.retransmitted &&
      ack.ackDelay <= this.tuning.ackDelayMs + ACK_DELAY_SLACK_MS
    ) {
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
    const lossDelay = Math.max(
      GRANULARITY_MS,
      (9 / 8) * Math.max(this.srtt ?? this.tuning.initialRtoMs, this.latestRtt),
    )
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
    this.firstSampleAt ??= this.context.clock()
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

  /** The peer restarted: every message not yet acknowledged is fragmented again into a fresh stream from seq 0. */
  private resetStream(): void {
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
}
