// An in-process network for tests: virtual time, a seeded PRNG, and loss, duplication, reordering and delay.
// Parties are anything with receive/tick/nextDeadline, such as two ReliableLinks.

export interface LossyOptions {
  /** Seeds the PRNG: the same seed and inputs give the same run. */
  seed: number
  /** Probability that a frame is dropped, 0..1. */
  loss?: number
  /** Probability that a frame arrives twice. */
  duplicate?: number
  /** Probability that a frame is held back by up to `reorderMs` more, so later frames overtake it. */
  reorder?: number
  /** One-way delay in ms, plus up to `jitterMs` more. */
  delayMs?: number
  jitterMs?: number
  reorderMs?: number
  /** Drops chosen frames on top of random loss: `n` counts frames sent to `to` so far, from 0. */
  dropIf?: (to: string, frame: Buffer, n: number) => boolean
}

/** What the network drives: a frame sink and a timer user. */
export interface LossyParty {
  receive(frame: Buffer): unknown
  nextDeadline(): number | undefined
  tick(): void
}

export interface LossyStats {
  sent: number
  lost: number
  duplicated: number
  delivered: number
  largestFrame: number
  /** Errors parties threw from receive (a correct peer never makes any). */
  receiveErrors: unknown[]
}

interface Event {
  at: number
  order: number
  run: () => void
}

/** Mulberry32: tiny, seedable, good enough to shuffle test schedules. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class LossyNetwork {
  now = 0
  readonly clock = (): number => this.now
  readonly stats: LossyStats = { sent: 0, lost: 0, duplicated: 0, delivered: 0, largestFrame: 0, receiveErrors: [] }
  private readonly random: () => number
  private readonly options: Required<Omit<LossyOptions, 'seed' | 'dropIf'>> & Pick<LossyOptions, 'dropIf'>
  private readonly sentTo = new Map<string, number>()
  private readonly parties = new Map<string, LossyParty>()
  private events: Event[] = []
  private order = 0

  constructor(options: LossyOptions) {
    this.random = prng(options.seed)
    this.options = { loss: 0, duplicate: 0, reorder: 0, delayMs: 10, jitterMs: 0, reorderMs: 50, ...options }
  }

  /** Changes the path's behaviour from now on (e.g. a longer delay). */
  configure(options: Partial<Omit<LossyOptions, 'seed'>>): void {
    Object.assign(this.options, options)
  }

  /** Puts a party at `name`, replacing the one there (a restart): frames in flight reach the new one. */
  attach(name: string, party: LossyParty): void {
    this.parties.set(name, party)
  }

  detach(name: string): void {
    this.parties.delete(name)
  }

  /** A send function for frames from anyone to `to`; pass it as a link's `output`. */
  sendTo(to: string): (frame: Buffer) => void {
    return (frame) => this.send(to, frame)
  }

  send(to: string, frame: Buffer): void {
    this.stats.sent++
    this.stats.largestFrame = Math.max(this.stats.largestFrame, frame.length)
    const copy = Buffer.from(frame)
    const n = this.sentTo.get(to) ?? 0
    this.sentTo.set(to, n + 1)
    if (this.random() < this.options.loss || this.options.dropIf?.(to, copy, n)) {
      this.stats.lost++
      return
    }
    const copies = this.random() < this.options.duplicate ? 2 : 1
    if (copies === 2) this.stats.duplicated++
    for (let i = 0; i < copies; i++) {
      let delay = this.options.delayMs + this.random() * this.options.jitterMs
      if (this.random() < this.options.reorder) delay += this.random() * this.options.reorderMs
      this.schedule(this.now + delay, () => this.arrive(to, copy))
    }
  }

  /** Runs `run` at virtual time `at` (for app-side delays, such as a slow durable store). */
  schedule(at: number, run: () => void): void {
    const event = { at: Math.max(at, this.now), order: this.order++, run }
    // Binary insertion keeps events sorted by (at, order): deterministic ties.
    let low = 0
    let high = this.events.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const other = this.events[mid]
      if (other.at < event.at || (other.at === event.at && other.order < event.order)) low = mid + 1
      else high = mid
    }
    this.events.splice(low, 0, event)
  }

  /** Advances to the next event or party deadline and runs it. Returns false when nothing is left to do. */
  step(): boolean {
    let next: { at: number; run: () => void } | undefined = this.events[0]
    for (const party of this.parties.values()) {
      const at = party.nextDeadline()
      if (at !== undefined && (next === undefined || at < next.at)) next = { at, run: () => party.tick() }
    }
    if (!next) return false
    if (next === this.events[0]) this.events.shift()
    this.now = Math.max(this.now, next.at)
    next.run()
    return true
  }

  /** Steps until `done()` holds or virtual time passes `untilMs`; returns whether `done()` held. */
  run(done: () => boolean, untilMs: number): boolean {
    while (!done()) {
      if (this.now > untilMs || !this.step()) return done()
    }
    return true
  }

  /** As `run`, but lets promises settle between steps (for apps whose deliver is async). */
  async runAsync(done: () => boolean, untilMs: number): Promise<boolean> {
    for (;;) {
      await settled()
      if (done()) return true
      if (this.now > untilMs) return false
      if (!this.step()) {
        // Nothing scheduled; a promise settling may still schedule something.
        await settled()
        if (done()) return true
        if (!this.step()) return false
      }
    }
  }

  private arrive(to: string, frame: Buffer): void {
    const party = this.parties.get(to)
    if (!party) return
    this.stats.delivered++
    try {
      party.receive(frame)
    } catch (error) {
      this.stats.receiveErrors.push(error)
    }
  }
}

/** Resolves after every pending promise reaction ran: a macrotask turn, no wall-clock wait. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
