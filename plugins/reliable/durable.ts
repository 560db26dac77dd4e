// What reliable delivery keeps in the profile: the epoch, the outbox (sent, not yet acknowledged) and the inbox
// (ids already received, and messages received but not yet handed to the app). See README.md, "Durable state".
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Journal } from './journal'
import { writeFileAtomic } from '../../core/profile'

export const EPOCH_FILE = 'reliable-epoch.json'
export const OUTBOX_FILE = 'reliable-outbox.log'
export const INBOX_FILE = 'reliable-inbox.log'
const MAX_EPOCH = 0xffffffff
const SETTLED = Promise.resolve()

/** An envelope as it is written: `t`, its text (envelopes are UTF-8 JSON). Records written before this format carry
 *  `m`, the envelope's bytes in base64; both are read. */
type Carried = { t: string } | { m: string }
type OutboxRecord = ({ o: 'add'; p: string; i: string } & Carried) | { o: 'ack'; p: string; i: string }
/** `recv` carries the message until `shown` says the app has it; `seen` is a compacted id. */
type InboxRecord = ({ o: 'recv'; p: string; i: string } & Carried) | { o: 'shown'; p: string; i: string } | { o: 'seen'; p: string; i: string }

export interface DurableLimits {
  /** Ids remembered per peer for duplicate suppression; the oldest are forgotten beyond it. */
  seenIdsPerPeer: number
  /** A journal larger than this is rewritten from the state in memory at its next commit. */
  compactBytes: number
}

export interface StoredMessage {
  peer: string
  id: string
  payload: Buffer
}

export class DurableState {
  readonly epoch: number
  private readonly outbox: Journal
  private readonly inbox: Journal
  /** peer → id → payload, in submission order (Map keeps insertion order). */
  private readonly pending = new Map<string, Map<string, Buffer>>()
  /** peer → ids received, oldest first. */
  private readonly seenIds = new Map<string, Set<string>>()
  /** peer → id → payload: received and durable, not yet confirmed handed to the app. */
  private readonly unshown = new Map<string, Map<string, Buffer>>()
  /** Durable once the latest `add` / `recv` record is: what frames and ACKs wait for (see wireBarrier). */
  private lastAdd: Promise<void> = SETTLED
  private lastRecv: Promise<void> = SETTLED

  /**
   * Opens the state in `dir`: raises the epoch (durably, before any link exists), reads both journals and compacts them.
   * Throws naming the file when one is corrupt.
   */
  static open(dir: string, limits: DurableLimits): DurableState {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    return new DurableState(dir, limits)
  }

  private constructor(
    readonly dir: string,
    private readonly limits: DurableLimits,
  ) {
    this.epoch = raiseEpoch(path.join(dir, EPOCH_FILE))

    const out = Journal.open(path.join(dir, OUTBOX_FILE), parseOutbox)
    this.outbox = out.journal
    for (const r of out.records) {
      if (r.o === 'add') this.pendingOf(r.p).set(r.i, payloadOf(r))
      else this.pending.get(r.p)?.delete(r.i)
    }
    const inb = Journal.open(path.join(dir, INBOX_FILE), parseInbox)
    this.inbox = inb.journal
    for (const r of inb.records) {
      if (r.o === 'shown') this.unshown.get(r.p)?.delete(r.i)
      else {
        this.markSeen(r.p, r.i)
        if (r.o === 'recv') this.unshownOf(r.p).set(r.i, payloadOf(r))
      }
    }
    this.outbox.rewrite(this.outboxSnapshot())
    this.inbox.rewrite(this.inboxSnapshot())
    this.outbox.compactWhenOver(limits.compactBytes, () => this.outboxSnapshot())
    this.inbox.compactWhenOver(limits.compactBytes, () => this.inboxSnapshot())
  }

  // ── sender ──

  /** Queues (peer, id, payload) for the outbox; durable once `sync()` resolves. */
  queue(peer: string, id: string, payload: Buffer): Promise<void> {
    this.pendingOf(peer).set(id, payload)
    return (this.lastAdd = this.outbox.append({ o: 'add', p: peer, i: id, t: payload.toString() }))
  }

  /** The peer acknowledged `id`: it leaves the outbox. */
  acknowledged(peer: string, id: string): Promise<void> {
    const queue = this.pending.get(peer)
    if (!queue?.delete(id)) return Promise.resolve()
    if (queue.size === 0) this.pending.delete(peer)
    return this.outbox.append({ o: 'ack', p: peer, i: id })
  }

  /** Messages not yet acknowledged, per peer, in the order they were queued. */
  outboxEntries(): StoredMessage[] {
    return [...this.pending].flatMap(([peer, queue]) => [...queue].map(([id, payload]) => ({ peer, id, payload })))
  }

  outboxSize(peer: string): number {
    return this.pending.get(peer)?.size ?? 0
  }

  // ── receiver ──

  seen(peer: string, id: string): boolean {
    return this.seenIds.get(peer)?.has(id) ?? false
  }

  /** Records a received message (the id, and the message until `shown`); the promise resolves once durable. */
  received(peer: string, id: string, payload: Buffer): Promise<void> {
    this.markSeen(peer, id)
    this.unshownOf(peer).set(id, payload)
    return (this.lastRecv = this.inbox.append({ o: 'recv', p: peer, i: id, t: payload.toString() }))
  }

  /** The app has the message: after a restart it is not handed over again. */
  shown(peer: string, id: string): void {
    const unshown = this.unshown.get(peer)
    if (!unshown?.delete(id)) return
    if (unshown.size === 0) this.unshown.delete(peer)
    // Written before returning: if the process is killed now, the message is not handed over a second time.
    void this.inbox.appendNow({ o: 'shown', p: peer, i: id }).catch(() => undefined) // a failure surfaces through sync()
  }

  /** Received before a restart and never confirmed handed to the app, in order. */
  unshownEntries(): StoredMessage[] {
    return [...this.unshown].flatMap(([peer, map]) => [...map].map(([id, payload]) => ({ peer, id, payload })))
  }

  // ── both ──

  /** Resolves once every record so far is on disk: the barrier in front of every frame that leaves. */
  sync(): Promise<void> {
    const out = this.outbox.sync()
    const inb = this.inbox.sync()
    return out === inb ? out : Promise.all([out, inb]).then(() => undefined)
  }

  /**
   * Resolves once every `add` and `recv` record so far is on disk: the barrier in front of every frame that leaves (a
   * data frame needs its message stored, an ACK the messages it covers). `ack` and `shown` records gate nothing: lost in
   * a crash, they only repeat a message that the peer (by id) or the app deduplicates. So a frame that an ACK lets out
   * does not wait for the fdatasync of that ACK's own record. Rejects once either journal has failed.
   */
  wireBarrier(): Promise<void> {
    const failure = this.outbox.failed ?? this.inbox.failed
    if (failure) return Promise.reject(failure)
    if (this.lastRecv === SETTLED) return this.lastAdd
    return Promise.all([this.lastAdd, this.lastRecv]).then(() => undefined)
  }

  get busy(): boolean {
    return this.outbox.busy || this.inbox.busy
  }

  stats(): { outboxCommits: number; outboxRecords: number; inboxCommits: number; inboxRecords: number } {
    return {
      outboxCommits: this.outbox.stats.commits,
      outboxRecords: this.outbox.stats.records,
      inboxCommits: this.inbox.stats.commits,
      inboxRecords: this.inbox.stats.records,
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.outbox.close(), this.inbox.close()])
  }

  private markSeen(peer: string, id: string): void {
    let ids = this.seenIds.get(peer)
    if (!ids) this.seenIds.set(peer, (ids = new Set()))
    ids.delete(id) // re-inserted as the newest
    ids.add(id)
    if (ids.size > this.limits.seenIdsPerPeer) {
      for (const oldest of ids) {
        // An id still waiting to be handed to the app must stay.
        if (this.unshown.get(peer)?.has(oldest)) continue
        ids.delete(oldest)
        break
      }
    }
  }

  private pendingOf(peer: string): Map<string, Buffer> {
    let queue = this.pending.get(peer)
    if (!queue) this.pending.set(peer, (queue = new Map()))
    return queue
  }

  private unshownOf(peer: string): Map<string, Buffer> {
    let map = this.unshown.get(peer)
    if (!map) this.unshown.set(peer, (map = new Map()))
    return map
  }

  private outboxSnapshot(): OutboxRecord[] {
    return this.outboxEntries().map(({ peer, id, payload }) => ({ o: 'add', p: peer, i: id, t: payload.toString() }))
  }

  private inboxSnapshot(): InboxRecord[] {
    const records: InboxRecord[] = []
    for (const [peer, ids] of this.seenIds) {
      const unshown = this.unshown.get(peer)
      for (const id of ids) {
        const payload = unshown?.get(id)
        records.push(payload ? { o: 'recv', p: peer, i: id, t: payload.toString() } : { o: 'seen', p: peer, i: id })
      }
    }
    return records
  }
}

/** Reads, raises and durably writes the epoch: it must grow at every start, or the peer drops our frames as stale. */
function raiseEpoch(file: string): number {
  let previous = 0
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as { epoch?: unknown }
    if (!Number.isInteger(value.epoch) || (value.epoch as number) < 0) throw new Error('no integer "epoch"')
    previous = value.epoch as number
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`${file} is unreadable (${(error as Error).message}); it must hold {"epoch": N}, N the highest epoch used so far`)
    }
  }
  if (previous >= MAX_EPOCH) throw new Error(`${file}: the epoch reached ${MAX_EPOCH}; reliable delivery cannot start again with this profile`)
  const epoch = previous + 1
  writeFileAtomic(file, JSON.stringify({ epoch }) + '\n')
  return epoch
}

function field(value: Record<string, unknown>, key: string): string {
  const v = value[key]
  if (typeof v !== 'string' || v === '') throw new Error(`"${key}" must be a non-empty string`)
  return v
}

/** The record's envelope: `t` as UTF-8, or (the earlier format) `m` as base64. */
function carried(r: Record<string, unknown>): Carried {
  if (typeof r.t === 'string') return { t: r.t }
  if (typeof r.m === 'string') return { m: r.m }
  throw new Error('"t" (the envelope) must be a string')
}

function payloadOf(r: Carried): Buffer {
  return 't' in r ? Buffer.from(r.t) : Buffer.from(r.m, 'base64')
}

function parseOutbox(value: unknown): OutboxRecord {
  if (typeof value !== 'object' || value === null) throw new Error('not an object')
  const r = value as Record<string, unknown>
  if (r.o === 'add') return { o: 'add', p: field(r, 'p'), i: field(r, 'i'), ...carried(r) }
  if (r.o === 'ack') return { o: 'ack', p: field(r, 'p'), i: field(r, 'i') }
  throw new Error(`unknown record kind ${JSON.stringify(r.o)}`)
}

function parseInbox(value: unknown): InboxRecord {
  if (typeof value !== 'object' || value === null) throw new Error('not an object')
  const r = value as Record<string, unknown>
  if (r.o === 'recv') return { o: 'recv', p: field(r, 'p'), i: field(r, 'i'), ...carried(r) }
  if (r.o === 'shown' || r.o === 'seen') return { o: r.o, p: field(r, 'p'), i: field(r, 'i') }
  throw new Error(`unknown record kind ${JSON.stringify(r.o)}`)
}
