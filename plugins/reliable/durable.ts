// What reliable delivery keeps in the profile: the epoch, the outbox (sent, not yet acknowledged) and the inbox
// (ids already received, and messages received but not yet handed to the app). See README.md, "Durable state".
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Journal, type RecordPosition } from './journal'
import { Fifo, writeFileAtomic } from '../../core'

export const EPOCH_FILE = 'reliable-epoch.json'
export const OUTBOX_FILE = 'reliable-outbox.log'
export const INBOX_FILE = 'reliable-inbox.log'
const MAX_EPOCH = 0xffffffff

/** An envelope as it is written: in the outbox `e`, the envelope itself (it is JSON, so it is stored as JSON, not as
 *  an escaped string); in the inbox `t`, its text (a peer's bytes need not be JSON). Earlier records carry `t` in the
 *  outbox too, or `m`, the envelope's bytes in base64; all three are read. */
type Carried = { e: unknown } | { t: string } | { m: string }
/** `ack` names the latest message acknowledged: acknowledgements come in queue order, so it covers those before it. */
type OutboxRecord = ({ o: 'add'; p: string; i: string } & Carried) | { o: 'ack'; p: string; i: string } | { o: 'gone' }
/** `recv` carries the message until `shown` says the app has it; `seen` is a compacted id. */
type InboxRecord =
  | ({ o: 'recv'; p: string; i: string } & Carried)
  | { o: 'shown'; p: string; i: string }
  | { o: 'seen'; p: string; i: string }

export interface DurableLimits {
  /** Ids remembered per peer for duplicate suppression; the oldest are forgotten beyond it. */
  seenIdsPerPeer: number
  /** Ids remembered across all peers together; the oldest arrivals are forgotten beyond it (names are free to make). */
  seenIdsTotal: number
  /** A journal larger than this is rewritten from the state in memory at its next commit. */
  compactBytes: number
}

/** Record numbers in the two journals of this run; see DurableState.mark. */
export interface DurableMark {
  add: number
  recv: number
}

export interface StoredMessage {
  peer: string
  id: string
  payload: Buffer
}

export class DurableState {
  /** The highest epoch used so far: raised at every start, and for a link that starts over (see nextEpoch). */
  epoch: number
  private readonly outbox: Journal
  private readonly inbox: Journal
  /** peer → id → envelope text, in submission order (Map keeps insertion order). */
  private readonly pending = new Map<string, Map<string, string>>()
  /** peer → id (as `idKey` stores it) → its arrival number. */
  private readonly seenIds = new Map<string, Map<string, number>>()
  /** peer → its arrivals, oldest first, for the per-peer bound (a Map's oldest entry costs a scan past every deleted one). */
  private readonly peerArrivals = new Map<string, Fifo<Arrival>>()
  /** Every arrival across peers, oldest first, for the total bound. In both queues an arrival whose id was refreshed or
   *  forgotten since is stale, and skipped. */
  private readonly arrivals = new Fifo<Arrival>()
  private arrivalCount = 0
  /** Where the records carrying a message's text lie (`peer\nid`), to blank the text once it is delivered or shown. */
  private readonly addPositions = new Map<string, RecordPosition>()
  private readonly recvPositions = new Map<string, RecordPosition>()
  /** Bytes of the envelopes in the outbox (not yet acknowledged). */
  private pendingBytes = 0
  /** peer → id (as `idKey` stores it) → payload: received and durable, not yet confirmed handed to the app. */
  private readonly unshown = new Map<string, Map<string, Buffer>>()
  /** Numbers of the latest `add` and `recv` records (see `mark`). */
  private lastAdd = 0
  private lastRecv = 0
  /** peer → latest id acknowledged and not yet recorded: one `ack` record per peer per tick. */
  private readonly acks = new Map<string, string>()

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
      if (r.o === 'add') this.addPending(r.p, r.i, payloadOf(r).toString())
      else if (r.o === 'ack') this.dropAcknowledged(r.p, r.i)
    }
    const inb = Journal.open(path.join(dir, INBOX_FILE), parseInbox)
    this.inbox = inb.journal
    for (const r of inb.records) {
      if (r.o === 'shown') this.unshown.get(r.p)?.delete(idKey(r.i))
      else {
        this.markSeen(r.p, r.i)
        if (r.o === 'recv') this.unshownOf(r.p).set(idKey(r.i), payloadOf(r))
      }
    }
    const outboxRecords = this.outboxSnapshot()
    this.outboxRewritten(outboxRecords, this.outbox.rewrite(outboxRecords))
    const inboxRecords = this.inboxSnapshot()
    this.inboxRewritten(inboxRecords, this.inbox.rewrite(inboxRecords))
    this.outbox.compactWhenOver(
      limits.compactBytes,
      () => this.outboxSnapshot(),
      (records, positions) => this.outboxRewritten(records, positions),
    )
    this.inbox.compactWhenOver(
      limits.compactBytes,
      () => this.inboxSnapshot(),
      (records, positions) => this.inboxRewritten(records, positions),
    )
  }

  // ── sender ──

  /**
   * Queues a message for the outbox; durable once the promise resolves (or `isDurable` of a later `mark()` holds).
   * `envelopeJson` must be JSON text (the plugin's own serialisation of the envelope): it goes into the record as it is.
   */
  queue(peer: string, id: string, envelopeJson: string): Promise<void> {
    this.addPending(peer, id, envelopeJson)
    const done = this.outbox.appendJson(
      `{"o":"add","p":${JSON.stringify(peer)},"i":${JSON.stringify(id)},"e":${envelopeJson}}`,
    )
    this.lastAdd = this.outbox.appended
    this.addPositions.set(`${peer}\n${id}`, this.outbox.lastPosition!)
    return done
  }

  /**
   * The peer acknowledged `id`: it leaves the outbox. Acknowledgements come in the order messages were queued (the link
   * acknowledges a stream prefix), so one record per peer per tick, naming the latest, covers them all.
   */
  acknowledged(peer: string, id: string): void {
    const queue = this.pending.get(peer)
    const text = queue?.get(id)
    if (!queue || text === undefined) return
    queue.delete(id)
    this.pendingBytes -= text.length
    this.blankAdd(peer, id)
    if (queue.size === 0) this.pending.delete(peer)
    if (this.acks.size === 0) setImmediate(() => this.recordAcks())
    this.acks.set(peer, id)
  }

  /** Messages not yet acknowledged, per peer, in the order they were queued. */
  outboxEntries(): StoredMessage[] {
    return [...this.pending].flatMap(([peer, queue]) =>
      [...queue].map(([id, text]) => ({ peer, id, payload: Buffer.from(text) })),
    )
  }

  outboxSize(peer: string): number {
    return this.pending.get(peer)?.size ?? 0
  }

  /** Characters of every envelope in the outbox, to every peer: what its journal holds at least. */
  get outboxBytes(): number {
    return this.pendingBytes
  }

  /** Raises the epoch durably, for a link that starts its streams over while this process runs (a peer's new key). */
  nextEpoch(): number {
    this.epoch = raiseEpoch(path.join(this.dir, EPOCH_FILE))
    return this.epoch
  }

  // ── receiver ──

  seen(peer: string, id: string): boolean {
    return this.seenIds.get(peer)?.has(idKey(id)) ?? false
  }

  /** Records a received message (the id, and the message until `shown`); the promise resolves once durable. */
  received(peer: string, id: string, payload: Buffer): Promise<void> {
    this.markSeen(peer, id)
    this.unshownOf(peer).set(idKey(id), payload)
    const done = this.inbox.append({ o: 'recv', p: peer, i: id, t: payload.toString() })
    this.lastRecv = this.inbox.appended
    this.recvPositions.set(`${peer}\n${idKey(id)}`, this.inbox.lastPosition!)
    return done
  }

  /**
   * The app has these messages: after a restart they are not handed over again. Their marks go to the file in one write
   * before returning, so a process killed afterwards repeats none of them; fdatasync follows in a group.
   */
  shown(peer: string, ids: readonly string[]): void {
    const unshown = this.unshown.get(peer)
    if (!unshown) return
    // A failure (or a mark after close) surfaces through sync() and `failure`; unobserved it must not crash the process.
    for (const id of ids) {
      const key = idKey(id)
      if (!unshown.delete(key)) continue
      this.inbox.append({ o: 'shown', p: peer, i: id }).catch(() => undefined)
      // The app has it (history keeps it, if anyone): its text leaves the journal now, the id stays.
      const position = this.recvPositions.get(`${peer}\n${key}`)
      this.recvPositions.delete(`${peer}\n${key}`)
      if (position) this.inbox.overwrite(position, JSON.stringify({ o: 'seen', p: peer, i: key }))
    }
    if (unshown.size === 0) this.unshown.delete(peer)
    this.inbox.write() // a failure surfaces through sync() and `failure`
  }

  /** Received before a restart and never confirmed handed to the app, in order (long ids as `idKey` stores them). */
  unshownEntries(): StoredMessage[] {
    return [...this.unshown].flatMap(([peer, map]) => [...map].map(([id, payload]) => ({ peer, id, payload })))
  }

  // ── both ──

  /** Resolves once every record so far is on disk, the acknowledgements of this tick included. */
  sync(): Promise<void> {
    this.recordAcks()
    const out = this.outbox.sync()
    const inb = this.inbox.sync()
    return out === inb ? out : Promise.all([out, inb]).then(() => undefined)
  }

  /**
   * The message records so far (the latest `add` and `recv`), to hold a frame until they are on disk (`isDurable`): a
   * data frame needs its message stored, an ACK the messages it covers. `ack` and `shown` records gate nothing: lost in
   * a crash, they only repeat a message that the peer (by id) or the app deduplicates. So a frame that an ACK lets out
   * does not wait for the fdatasync of that ACK's own record.
   */
  mark(): DurableMark {
    return { add: this.lastAdd, recv: this.lastRecv }
  }

  /** Whether the records `mark` named are on disk. */
  isDurable(mark: DurableMark): boolean {
    return this.outbox.durable >= mark.add && this.inbox.durable >= mark.recv
  }

  /** Calls `listener` whenever records became durable, or a journal failed (see `failure`). */
  onCommit(listener: () => void): void {
    this.outbox.onCommit(listener)
    this.inbox.onCommit(listener)
  }

  /** Why records can no longer be stored, once a journal failed: nothing becomes durable after it. */
  get failure(): Error | undefined {
    return this.outbox.failed ?? this.inbox.failed
  }

  get busy(): boolean {
    return this.outbox.busy || this.inbox.busy
  }

  stats(): {
    outboxCommits: number
    outboxRecords: number
    inboxCommits: number
    inboxRecords: number
    seenIds: number
    seenPeers: number
  } {
    return {
      seenIds: [...this.seenIds.values()].reduce((sum, ids) => sum + ids.size, 0),
      seenPeers: this.seenIds.size,
      outboxCommits: this.outbox.stats.commits,
      outboxRecords: this.outbox.stats.records,
      inboxCommits: this.inbox.stats.commits,
      inboxRecords: this.inbox.stats.records,
    }
  }

  async close(): Promise<void> {
    this.recordAcks()
    await Promise.all([this.outbox.close(), this.inbox.close()])
  }

  private recordAcks(): void {
    // A failure surfaces through `failure`; `void` alone would leave a rejection after close unhandled, crashing the process.
    for (const [peer, id] of this.acks) this.outbox.append({ o: 'ack', p: peer, i: id }).catch(() => undefined)
    this.acks.clear()
  }

  /** Replays an `ack` record: `id` and everything queued for `peer` before it leave the outbox. */
  private dropAcknowledged(peer: string, id: string): void {
    const queue = this.pending.get(peer)
    if (!queue?.has(id)) return
    for (const [queued, text] of queue) {
      queue.delete(queued)
      this.pendingBytes -= text.length
      this.blankAdd(peer, queued)
      if (queued === id) break
    }
    if (queue.size === 0) this.pending.delete(peer)
  }

  private markSeen(peer: string, id: string): void {
    const key = idKey(id)
    let ids = this.seenIds.get(peer)
    let order = this.peerArrivals.get(peer)
    if (!ids || !order) {
      this.seenIds.set(peer, (ids = new Map()))
      this.peerArrivals.set(peer, (order = new Fifo()))
    }
    const arrival: Arrival = { peer, key, number: ++this.arrivalCount }
    ids.delete(key) // re-inserted as the newest
    ids.set(key, arrival.number)
    order.push(arrival)
    this.arrivals.push(arrival)
    while (ids.size > this.limits.seenIdsPerPeer) {
      const oldest = order.peek()!
      if (ids.get(oldest.key) !== oldest.number) {
        order.shift()
        continue
      }
      // An id still waiting to be handed to the app must stay (few: the receive window bounds them).
      if (this.unshown.get(peer)?.has(oldest.key)) break
      order.shift()
      ids.delete(oldest.key)
    }
    // Stale arrivals of a peer whose ids were refreshed or forgotten by the total: rebuilt before they outnumber the live.
    if (order.length > 2 * ids.size + 1024) {
      order.clear()
      for (const [liveKey, number] of ids) order.push({ peer, key: liveKey, number })
    }
    // The total: the oldest arrival of any peer goes, so a thousand names remember no more than one.
    while (this.arrivals.length > this.limits.seenIdsTotal) {
      const oldest = this.arrivals.shift()!
      const owner = this.seenIds.get(oldest.peer)
      if (owner?.get(oldest.key) !== oldest.number) continue
      owner.delete(oldest.key)
      if (owner.size === 0) {
        this.seenIds.delete(oldest.peer)
        this.peerArrivals.delete(oldest.peer)
      }
    }
  }

  /** Where the messages a rewrite carried over now lie, so their text can still be blanked once delivered. */
  private outboxRewritten(records: readonly unknown[], positions: readonly RecordPosition[]): void {
    this.addPositions.clear()
    records.forEach((record, index) => {
      const r = record as OutboxRecord
      if (r.o === 'add') this.addPositions.set(`${r.p}\n${r.i}`, positions[index])
    })
  }

  private inboxRewritten(records: readonly unknown[], positions: readonly RecordPosition[]): void {
    this.recvPositions.clear()
    records.forEach((record, index) => {
      const r = record as InboxRecord
      if (r.o === 'recv') this.recvPositions.set(`${r.p}\n${r.i}`, positions[index])
    })
  }

  /** The peer has the message: its text leaves the outbox journal now (`gone`, read as nothing, takes the record's place). */
  private blankAdd(peer: string, id: string): void {
    const position = this.addPositions.get(`${peer}\n${id}`)
    if (!position) return
    this.addPositions.delete(`${peer}\n${id}`)
    this.outbox.overwrite(position, JSON.stringify({ o: 'gone' }))
  }

  private addPending(peer: string, id: string, envelopeJson: string): void {
    const queue = this.pendingOf(peer)
    this.pendingBytes += envelopeJson.length - (queue.get(id)?.length ?? 0)
    queue.set(id, envelopeJson)
  }

  private pendingOf(peer: string): Map<string, string> {
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
    const records: OutboxRecord[] = []
    for (const [peer, queue] of this.pending) {
      // Text restored from records of the earlier formats was never checked to be JSON: kept as text unless it is.
      for (const [id, text] of queue) records.push({ o: 'add', p: peer, i: id, ...carriedText(text) })
    }
    return records
  }

  private inboxSnapshot(): InboxRecord[] {
    // In arrival order across peers, so that after a restart the total bound forgets the same ids first.
    const entries: Array<{ arrival: number; record: InboxRecord }> = []
    for (const [peer, ids] of this.seenIds) {
      const unshown = this.unshown.get(peer)
      for (const [key, arrival] of ids) {
        const payload = unshown?.get(key)
        entries.push({
          arrival,
          record: payload ? { o: 'recv', p: peer, i: key, t: payload.toString() } : { o: 'seen', p: peer, i: key },
        })
      }
    }
    return entries.sort((a, b) => a.arrival - b.arrival).map((entry) => entry.record)
  }
}

interface Arrival {
  peer: string
  key: string
  number: number
}

/** Longest id kept as it is; longer ones (a peer may send 255 bytes) are kept as a digest, so each costs the same. */
const MAX_KEPT_ID_LENGTH = 64

/** How an id is remembered: itself, or for a long one a SHA-256 digest (44 characters, so a digest maps to itself). */
export function idKey(id: string): string {
  return id.length <= MAX_KEPT_ID_LENGTH ? id : '#' + createHash('sha256').update(id).digest('base64url')
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
      throw new Error(
        `${file} is unreadable (${(error as Error).message}); it must hold {"epoch": N}, N the highest epoch used so far`,
      )
    }
  }
  if (previous >= MAX_EPOCH)
    throw new Error(`${file}: the epoch reached ${MAX_EPOCH}; reliable delivery cannot start again with this profile`)
  const epoch = previous + 1
  writeFileAtomic(file, JSON.stringify({ epoch }) + '\n')
  return epoch
}

function field(value: Record<string, unknown>, key: string): string {
  const v = value[key]
  if (typeof v !== 'string' || v === '') throw new Error(`"${key}" must be a non-empty string`)
  return v
}

/** The record's envelope: `e` as JSON, `t` as UTF-8 text, or (the earliest format) `m` as base64. */
function carried(r: Record<string, unknown>, json: boolean): Carried {
  if (json && 'e' in r && r.e !== undefined) return { e: r.e }
  if (typeof r.t === 'string') return { t: r.t }
  if (typeof r.m === 'string') return { m: r.m }
  throw new Error(json ? '"e" (the envelope) is missing' : '"t" (the envelope) must be a string')
}

/** Text as an outbox record carries it: as JSON when it is (always, since the plugin writes JSON), else as text. */
function carriedText(text: string): Carried {
  try {
    return { e: JSON.parse(text) as unknown }
  } catch {
    return { t: text }
  }
}

function payloadOf(r: Carried): Buffer {
  if ('e' in r) return Buffer.from(JSON.stringify(r.e))
  return 't' in r ? Buffer.from(r.t) : Buffer.from(r.m, 'base64')
}

function parseOutbox(value: unknown): OutboxRecord {
  if (typeof value !== 'object' || value === null) throw new Error('not an object')
  const r = value as Record<string, unknown>
  if (r.o === 'add') return { o: 'add', p: field(r, 'p'), i: field(r, 'i'), ...carried(r, true) }
  if (r.o === 'ack') return { o: 'ack', p: field(r, 'p'), i: field(r, 'i') }
  if (r.o === 'gone') return { o: 'gone' }
  throw new Error(`unknown record kind ${JSON.stringify(r.o)}`)
}

function parseInbox(value: unknown): InboxRecord {
  if (typeof value !== 'object' || value === null) throw new Error('not an object')
  const r = value as Record<string, unknown>
  if (r.o === 'recv') return { o: 'recv', p: field(r, 'p'), i: field(r, 'i'), ...carried(r, false) }
  if (r.o === 'shown' || r.o === 'seen') return { o: r.o, p: field(r, 'p'), i: field(r, 'i') }
  throw new Error(`unknown record kind ${JSON.stringify(r.o)}`)
}
