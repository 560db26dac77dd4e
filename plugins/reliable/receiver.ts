// The receive side of a ReliableLink: reassembly of fragments, the receive window, in-order delivery one message at a
// time through the app's `deliver` and DeliveredStore, and the ACKs that report it. Pure: time is passed in.
import { type AckBlock, type DataFrame, FrameError, type SackRange, MAX_SACK_RANGES } from '../../protocol/reliable'
import { type LinkCounters, type ReceiveOutcome, type Tuning, U32_MAX } from './options'
import type { DeliveredStore } from './store'

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

export type DataVerdict = 'new' | 'duplicate' | 'beyond-window'

/** What the receive side needs from the link it belongs to. */
export interface ReceiverContext {
  tuning: Tuning
  /** Frames held at most (window and byte limit together). */
  window: number
  counters: LinkCounters
  clock: () => number
  deliver: (id: string, payload: Buffer) => void | Promise<void>
  store: DeliveredStore
  closed: () => boolean
  report: (error: Error) => void
  /** A delivery settled outside any call into the link: the link sends what that allows and re-reports its deadline. */
  settledLater: () => void
}

export class Receiver {
  private readonly context: ReceiverContext
  private readonly tuning: Tuning
  private readonly window: number
  private readonly counters: LinkCounters
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
  /** When an ACK is due; undefined when none is pending. */
  ackDue: number | undefined
  private unackedFrames = 0
  private largestRecvSeq = -1
  private largestRecvAt: number | undefined

  constructor(context: ReceiverContext) {
    this.context = context
    this.tuning = context.tuning
    this.window = context.window
    this.counters = context.counters
  }

  /** The receiver's deadlines: the pending ACK and a delivery retry. */
  deadlines(): (number | undefined)[] {
    return [this.ackDue, this.retryAt]
  }

  stats(): { bufferedFrames: number; bufferedBytes: number } {
    return { bufferedFrames: this.bufferedFrames, bufferedBytes: this.bufferedBytes }
  }

  /** Offers a message again once the retry delay after a failed delivery has passed. */
  tick(now: number): void {
    if (this.retryAt !== undefined && this.retryAt <= now) {
      this.retryAt = undefined
      this.pump()
    }
  }

  /** The peer restarted: what it sent in its old stream is forgotten. */
  reset(): void {
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

  /** Throws FrameError if the frame contradicts the stream; `fresh`: as the stream will be after a reset. */
  checkData(frame: DataFrame, fresh: boolean): DataVerdict {
    const boundary = fresh ? 0 : this.rxBoundary
    const base = fresh ? 0 : this.rxDeliverBase
    const start = frame.seq - frame.fragIndex
    if (frame.fragCount > this.window) {
      throw new FrameError(
        'protocol',
        `message of ${frame.fragCount} fragments cannot fit the ${this.window}-frame window`,
      )
    }
    if (frame.seq < boundary) return 'duplicate'
    if (start < boundary)
      throw new FrameError('protocol', `fragment at seq ${frame.seq} claims a message that starts before ${boundary}`)
    if (frame.seq >= base + this.window) return 'beyond-window'
    if (fresh) return 'new'
    const existing = this.partials.get(start)
    if (existing) {
      if (existing.count !== frame.fragCount) {
        throw new FrameError(
          'protocol',
          `fragment at seq ${frame.seq} says ${frame.fragCount} fragments; earlier ones said ${existing.count}`,
        )
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

  acceptData(frame: DataFrame, verdict: DataVerdict, now: number): ReceiveOutcome {
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
    } else if (
      verdict === 'beyond-window' ||
      this.bufferedBytes + frame.payload.length > this.tuning.maxBufferedBytes
    ) {
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
        this.context.report(
          new FrameError(
            'protocol',
            `message "${partial.id}" is ${payload.length} bytes; at most ${this.tuning.maxMessageBytes}`,
          ),
        )
      }
      this.deliveryQueue.push({
        start: partial.start,
        count: partial.count,
        id: partial.id as string,
        payload,
        discard,
      })
      this.rxBoundary += partial.count
    }
  }

  /** Delivers assembled messages one at a time, in order; the next waits until the previous one settled. */
  private pump(): void {
    while (!this.delivering && !this.context.closed() && this.retryAt === undefined && this.deliveryQueue.length > 0) {
      const message = this.deliveryQueue[0]
      if (message.discard || this.context.store.seen(message.id)) {
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
            this.retryAt = this.context.clock() + this.tuning.deliveryRetryMs
            // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a tap may throw a non-Error; its text is all there is
            const reason = error instanceof Error ? error.message : String(error)
            this.context.report(
              new Error(`reliable: delivering message "${message.id}" failed, retrying: ${reason}`, { cause: error }),
            )
          }
        }
        if (!synchronous) {
          // Settled outside any call into the link: continue here and tell the owner about new deadlines.
          this.pump()
          this.context.settledLater()
        }
      }
      runSteps(
        [() => this.context.deliver(message.id, message.payload), () => this.context.store.markDelivered(message.id)],
        settle,
      )
      synchronous = false
      if (this.delivering) return
    }
  }

  private delivered(message: Assembled): void {
    this.deliveryQueue.shift()
    this.rxDeliverBase = message.start + message.count
    this.bufferedFrames -= message.count
    this.bufferedBytes -= message.payload.length
    this.scheduleAck(this.context.clock())
  }

  buildAck(now: number): AckBlock {
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

  /** The pending ACK, if one is due and `fits` beside a DATA frame's payload; taking it marks it sent. */
  piggyback(now: number, fits: (ack: AckBlock) => boolean): AckBlock | undefined {
    if (this.ackDue === undefined) return undefined
    const candidate = this.buildAck(now)
    if (!fits(candidate)) return undefined
    this.ackSent()
    return candidate
  }

  ackSent(): void {
    this.ackDue = undefined
    this.unackedFrames = 0
  }
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
