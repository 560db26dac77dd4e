// The link's options, their defaults and checks, and what the link reports: the part of ReliableLink an owner configures.
import { MAX_FRAME_BYTES, MAX_ID_BYTES, dataOverhead } from '../../protocol/reliable'
import type { DeliveredStore } from './store'

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
export type Tuning = typeof DEFAULTS

export const U32_MAX = 0xffffffff

/** The counters both sides of a link keep, reported by `stats()`. */
export interface LinkCounters {
  dataFramesSent: number
  ackFramesSent: number
  retransmissions: number
  fastRetransmits: number
  timeouts: number
  framesReceived: number
  duplicates: number
  dropped: number
  deduplicated: number
  delivered: number
  streamResets: number
}

export function newCounters(): LinkCounters {
  return {
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
}

/**
 * Checks every option and throws one TypeError naming each problem. Returns the tuning with defaults filled in and
 * `window`: the frames the receive side holds at most (window and byte limit together).
 */
export function checkOptions(options: ReliableLinkOptions): { tuning: Tuning; window: number } {
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
  return { tuning, window }
}

/** Fragments a message of `payloadBytes` needs: fragment 0 also carries the id. */
export function fragmentCount(payloadBytes: number, idBytes: number, maxFrameBytes: number): number {
  const first = maxFrameBytes - dataOverhead(idBytes, undefined)
  const rest = maxFrameBytes - dataOverhead(undefined, undefined)
  return payloadBytes <= first ? 1 : 1 + Math.ceil((payloadBytes - first) / rest)
}
