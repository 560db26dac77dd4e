// Reliable, ordered, exactly-once delivery of messages to one peer over a lossy datagram path.
// Pure and deterministic: no sockets, no timers. Time comes from `clock`, frames leave through `output`,
// and the owner calls `tick()` at `nextDeadline()`. The algorithm and frame layout are in README.md.
// This file holds the epochs and the public calls; the two directions are `Sender` (sender.ts) and `Receiver`
// (receiver.ts), the options `options.ts`.
import { MAX_ID_BYTES, decodeFrame, encodeFrame } from '../../protocol/reliable'
import {
  type LinkCounters,
  type ReceiveOutcome,
  type ReliableLinkOptions,
  type ReliableLinkStats,
  type Tuning,
  checkOptions,
  newCounters,
} from './options'
import { type DataVerdict, Receiver } from './receiver'
import { Sender } from './sender'

export { type ReceiveOutcome, type ReliableLinkOptions, type ReliableLinkStats, fragmentCount } from './options'

export class ReliableLink {
  readonly epoch: number
  private readonly tuning: Tuning
  private readonly clock: () => number
  private readonly output: (frame: Buffer) => void
  private readonly onAcked?: (id: string) => void
  private readonly onError?: (error: Error) => void
  private readonly onDeadline?: (deadline: number | undefined) => void
  private closed = false
  private peerEpoch = 0
  private lastDeadline: number | undefined
  private readonly counters: LinkCounters = newCounters()
  private readonly sender: Sender
  private readonly receiver: Receiver

  constructor(options: ReliableLinkOptions) {
    const { tuning, window } = checkOptions(options)
    this.epoch = options.epoch
    this.tuning = tuning
    this.clock = options.clock
    this.output = options.output
    this.onAcked = options.onAcked
    this.onError = options.onError
    this.onDeadline = options.onDeadline
    this.receiver = new Receiver({
      tuning,
      window,
      counters: this.counters,
      clock: this.clock,
      deliver: options.deliver,
      store: options.store,
      closed: () => this.closed,
      report: (error) => this.onError?.(error),
      settledLater: () => {
        this.flush(this.clock())
        this.finish()
      },
    })
    this.sender = new Sender({
      epoch: this.epoch,
      tuning,
      counters: this.counters,
      clock: this.clock,
      output: this.output,
      peerEpoch: () => this.peerEpoch,
      piggybackAck: (now, fits) => this.receiver.piggyback(now, fits),
    })
  }

  /**
   * Queues a message for the peer. `id` must be unique per link (1..255 bytes of UTF-8); the app persists
   * (id, payload) until `onAcked(id)` and, after its own restart, submits them again in the same order.
   */
  submit(id: string, payload: Buffer): void {
    if (this.closed) throw new Error(`reliable: cannot submit "${id}": the link is closed`)
    if (typeof id !== 'string' || id.length === 0)
      throw new TypeError('reliable: message id must be a non-empty string')
    const idBytes = Buffer.byteLength(id, 'utf8')
    if (idBytes > MAX_ID_BYTES)
      throw new RangeError(`reliable: message id "${id.slice(0, 40)}…" is ${idBytes} bytes; at most ${MAX_ID_BYTES}`)
    if (!Buffer.isBuffer(payload)) throw new TypeError(`reliable: payload of "${id}" must be a Buffer`)
    if (payload.length > this.tuning.maxMessageBytes) {
      throw new RangeError(
        `reliable: message "${id}" is ${payload.length} bytes; the limit is ${this.tuning.maxMessageBytes} (maxMessageBytes)`,
      )
    }
    if (this.sender.has(id)) throw new Error(`reliable: message "${id}" is already queued on this link`)
    this.sender.enqueue(id, payload)
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
      if (frame.ack) this.sender.checkAck(frame.ack, restarted)
      if (frame.kind === 'data') dataVerdict = this.receiver.checkData(frame, restarted)
    }

    if (frame.epoch > this.peerEpoch) this.learnPeer(frame.epoch)
    let outcome: ReceiveOutcome
    if (!addressed) {
      // The peer does not know this incarnation yet: tell it at once; its frames are for someone else.
      this.counters.dropped++
      this.receiver.ackDue = now
      outcome = 'unaddressed'
    } else {
      if (frame.ack) this.sender.applyAck(frame.ack, now)
      outcome = frame.kind === 'data' ? this.receiver.acceptData(frame, dataVerdict ?? 'new', now) : 'ack'
    }
    this.flush(now)
    this.finish()
    return outcome
  }

  /** Runs what is due: ACKs, retransmissions, hellos, delivery retries. Call at `nextDeadline()`; early is harmless. */
  tick(): void {
    if (this.closed) return
    const now = this.clock()
    this.sender.tick(now)
    this.receiver.tick(now)
    this.flush(now)
    this.finish()
  }

  /** When `tick` is next needed (on the `clock` scale), or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    if (this.closed) return undefined
    let deadline: number | undefined
    for (const at of [...this.receiver.deadlines(), ...this.sender.deadlines()]) {
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
    if (this.closed || !this.sender.pathRestored(this.clock())) return
    this.finish()
  }

  /** Messages submitted and not yet acknowledged, in order: what the app must still hold durably. */
  unacked(): { id: string; payload: Buffer }[] {
    return this.sender.unacked()
  }

  /** Stops for good: no more output, callbacks or deadlines. A delivery in progress may still settle in the app. */
  close(): void {
    this.closed = true
    this.finish()
  }

  stats(): ReliableLinkStats {
    return { ...this.counters, ...this.sender.stats(), peerEpoch: this.peerEpoch, ...this.receiver.stats() }
  }

  /** The peer's epoch went up: it restarted, so both streams start over (its receiver lost what it held). */
  private learnPeer(epoch: number): void {
    const restarted = this.peerEpoch !== 0
    if (restarted) this.counters.streamResets++
    this.sender.learnPeer(restarted)
    if (restarted) this.receiver.reset()
    this.peerEpoch = epoch
  }

  /** Sends what the windows allow, and an ACK if one is due. */
  private flush(now: number): void {
    if (this.closed) return
    if (this.peerEpoch === 0) {
      // Data frames name the peer's epoch, so learn it first: an ACK frame with peerEpoch 0 is the hello.
      if (this.sender.helloDue()) {
        this.sendAck(now)
        this.sender.helloSent(now)
      }
    } else {
      this.sender.sendWindow(now)
    }
    if (this.receiver.ackDue !== undefined && this.receiver.ackDue <= now) this.sendAck(now)
  }

  private sendAck(now: number): void {
    const bytes = encodeFrame({
      kind: 'ack',
      epoch: this.epoch,
      peerEpoch: this.peerEpoch,
      ack: this.receiver.buildAck(now),
    })
    this.receiver.ackSent()
    this.counters.ackFramesSent++
    this.output(bytes)
  }

  /** Ends every public call: fires onAcked outside the state changes, then reports a moved deadline. */
  private finish(): void {
    const acked = this.sender.ackedIds
    while (acked.length > 0 && !this.closed) this.onAcked?.(acked.shift() as string)
    const deadline = this.nextDeadline()
    if (deadline !== this.lastDeadline) {
      this.lastDeadline = deadline
      this.onDeadline?.(deadline)
    }
  }
}
