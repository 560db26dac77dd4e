// An append-only file of JSON lines with group commit: records appended in the same tick share one write and one
// fdatasync, so many small records cost one disk flush. Read back at open; a torn last line (a crash mid-write) is cut off.
import * as fs from 'node:fs'
import { writeFileAtomic } from '../../core'

/** A journal that cannot be read: names the file and the line, and says what to do. */
export class JournalCorrupt extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(
      `${file} is corrupt at line ${line} (${reason}); move the file aside to start without it (its messages are then lost)`,
    )
    this.name = 'JournalCorrupt'
  }
}

interface Batch {
  lines: string[]
  done: Promise<void>
  resolve: () => void
  reject: (error: Error) => void
}

/** Where one record lies in the file, valid until the file is rewritten (see `Journal.overwrite`). */
export interface RecordPosition {
  generation: number
  offset: number
  length: number
}

/** Told of each rewrite: the records written and where each now lies. */
export type Rewritten = (records: readonly unknown[], positions: readonly RecordPosition[]) => void

export interface JournalStats {
  /** write + fdatasync rounds so far: records / commits is the group-commit factor. */
  commits: number
  records: number
}

const SETTLED = Promise.resolve()

export class Journal {
  private fd: number
  /** Records not yet written. */
  private open: Batch | undefined
  /** Written, waiting for the next fdatasync. */
  private written: Batch[] = []
  /** Written, their fdatasync running. */
  private syncing: Batch[] = []
  private scheduled = false
  private failure: Error | undefined
  private closed = false
  private bytes: number
  private compaction: { overBytes: number; snapshot: () => readonly unknown[]; rewritten?: Rewritten } | undefined
  readonly stats: JournalStats = { commits: 0, records: 0 }
  /** Counts rewrites: a position from an earlier file is no longer valid. */
  private generation = 0
  /** A descriptor without O_APPEND, for overwrite (Linux's pwrite appends on an O_APPEND descriptor, whatever the offset). */
  private editFd: number | undefined
  private latest: RecordPosition | undefined
  /** Bytes of the file actually written (appended records may still wait in a batch). */
  private writtenBytes: number
  /** Overwrites of records still waiting in a batch: applied once it is written. */
  private deferred: Array<{ position: RecordPosition; bytes: Buffer }> = []
  /** Records appended in this run that are on disk: record number n (1-based, see `appended`) is durable once this ≥ n. */
  private durableRecords = 0
  /** Called after each commit and on failure, once the batches' promises are settled. */
  private readonly listeners: Array<() => void> = []

  /**
   * Opens (creating) `file` and returns its records, parsed by `parse`, which throws to reject a record.
   * A last line without its newline is a write cut short by a crash: it is dropped and cut from the file.
   * Any other bad line throws JournalCorrupt.
   */
  static open<R>(file: string, parse: (value: unknown) => R): { journal: Journal; records: R[] } {
    let text = ''
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    const complete = text.lastIndexOf('\n') + 1
    const records: R[] = []
    let line = 0
    for (let start = 0; start < complete;) {
      const end = text.indexOf('\n', start)
      line++
      const raw = text.slice(start, end)
      start = end + 1
      if (raw === '') continue
      let value: unknown
      try {
        value = JSON.parse(raw)
      } catch (error) {
        throw new JournalCorrupt(file, line, (error as Error).message)
      }
      try {
        records.push(parse(value))
      } catch (error) {
        throw new JournalCorrupt(file, line, (error as Error).message)
      }
    }
    const fd = fs.openSync(file, 'a+', 0o600)
    // Appending after a torn line would glue the next record to it and corrupt a line in the middle.
    const keep = Buffer.byteLength(text.slice(0, complete))
    if (keep !== fs.fstatSync(fd).size) {
      fs.ftruncateSync(fd, keep)
      fs.fsyncSync(fd)
    }
    return { journal: new Journal(file, fd, keep), records }
  }

  private constructor(
    readonly file: string,
    fd: number,
    bytes: number,
  ) {
    this.fd = fd
    this.bytes = bytes
    this.writtenBytes = bytes
  }

  /** Size of the file, including records not yet written. */
  get size(): number {
    return this.bytes
  }

  /** Why the journal stopped taking records (a write or fdatasync failed), if it did. */
  get failed(): Error | undefined {
    return this.failure
  }

  /** Records appended in this run so far: the number of the latest one. */
  get appended(): number {
    return this.stats.records
  }

  /** Records of this run that are on disk (fdatasync'ed): a record numbered at most this is durable. */
  get durable(): number {
    return this.durableRecords
  }

  /** Calls `listener` after every commit (records became durable) and when the journal fails. */
  onCommit(listener: () => void): void {
    this.listeners.push(listener)
  }

  /** Whether records are waiting to be written or synced. */
  get busy(): boolean {
    return this.open !== undefined || this.written.length > 0 || this.syncing.length > 0
  }

  /**
   * Queues one record; it is written at the end of this tick with every other record of the tick, and the promise
   * resolves once it is on disk (fdatasync'ed).
   */
  append(record: unknown): Promise<void> {
    return this.appendJson(JSON.stringify(record))
  }

  /** Like append, for a record serialised by the caller: `json` must be one JSON value, without a line break. */
  appendJson(json: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    if (this.closed) return Promise.reject(new Error(`${this.file} is closed`))
    const line = json + '\n'
    const length = Buffer.byteLength(line)
    this.latest = { generation: this.generation, offset: this.bytes, length: length - 1 }
    this.bytes += length
    this.stats.records++
    if (!this.open) this.open = newBatch()
    this.open.lines.push(line)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.write())
    }
    return this.open.done
  }

  /** Resolves once every record appended so far is on disk. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    return (
      (this.open ?? this.written[this.written.length - 1] ?? this.syncing[this.syncing.length - 1])?.done ?? SETTLED
    )
  }

  /**
   * Replaces the whole file with `records` (compaction): temp file, fsync, rename, so a crash leaves the old file
   * or the new one. Only while idle: a record in flight would land in the replaced file.
   */
  rewrite(records: readonly unknown[]): RecordPosition[] {
    if (this.busy) throw new Error(`${this.file}: rewrite while records are pending`)
    return this.replaceWith(records)
  }

  /**
   * Past `overBytes`, the next write replaces the file with `snapshot()` instead of appending: the snapshot is the
   * state after every record appended so far, so the queued records need not be written.
   */
  compactWhenOver(overBytes: number, snapshot: () => readonly unknown[], rewritten?: Rewritten): void {
    this.compaction = { overBytes, snapshot, rewritten }
  }

  /** Where the record appended last will lie in the file. */
  get lastPosition(): RecordPosition | undefined {
    return this.latest
  }

  /**
   * Overwrites a written record in place with `json` (no longer than the record; padded with spaces, which JSON allows),
   * e.g. to drop a message's text once it is delivered rather than at the next compaction. Best effort: nothing when the
   * file was rewritten since (the rewrite dropped what was not needed), and the change rides on the next fdatasync.
   */
  overwrite(position: RecordPosition, json: string): void {
    if (position.generation !== this.generation || this.closed || this.failure) return
    const bytes = Buffer.alloc(position.length, ' ')
    if (bytes.write(json) !== Buffer.byteLength(json)) return // longer than the record: leave it
    if (position.offset + position.length > this.writtenBytes) return void this.deferred.push({ position, bytes })
    this.overwriteNow(position, bytes)
  }

  private overwriteNow(position: RecordPosition, bytes: Buffer): void {
    try {
      this.editFd ??= fs.openSync(this.file, 'r+')
      fs.writeSync(this.editFd, bytes, 0, bytes.length, position.offset)
    } catch {
      // The text stays until the next compaction; the journal itself is unharmed.
    }
  }

  /** Applies the overwrites whose records are now in the file; those of an earlier file are dropped. */
  private applyDeferred(): void {
    if (this.deferred.length === 0) return
    const later: typeof this.deferred = []
    for (const entry of this.deferred) {
      if (entry.position.generation !== this.generation) continue
      if (entry.position.offset + entry.position.length > this.writtenBytes) later.push(entry)
      else this.overwriteNow(entry.position, entry.bytes)
    }
    this.deferred = later
  }

  /** Writes and syncs what is queued, and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return
    this.write()
    await this.sync().catch(() => undefined)
    this.closed = true
    fs.closeSync(this.fd)
    this.closeEdit()
  }

  /**
   * Writes the records queued so far (the end of the tick does it anyway); call it to have them in the file now, so that
   * a killed process keeps them: for records whose loss would repeat something visible. The fdatasync follows in a group.
   */
  write(): void {
    this.scheduled = false
    const batch = this.open
    if (!batch || this.closed || this.failure) return
    if (this.compaction && this.bytes > this.compaction.overBytes) {
      // Under a steady load a sync is always running: wait for it rather than append, or the file would never be
      // compacted and grow without bound. The batch goes into the snapshot once the syncs in flight are done.
      if (this.written.length > 0 || this.syncing.length > 0) return
      this.open = undefined
      try {
        const records = this.compaction.snapshot()
        const positions = this.replaceWith(records)
        this.compaction.rewritten?.(records, positions)
      } catch (error) {
        return this.fail([batch], error as Error)
      }
      this.stats.commits++
      return this.committed([batch])
    }
    this.open = undefined
    try {
      // Written at once: a killed process loses nothing written; fdatasync is for a crash of the machine.
      const text = batch.lines.join('')
      fs.writeSync(this.fd, text)
      this.writtenBytes += Buffer.byteLength(text)
    } catch (error) {
      return this.fail([batch], error as Error)
    }
    this.written.push(batch)
    this.applyDeferred()
    if (this.syncing.length === 0) this.startSync()
  }

  /** One fdatasync for every batch written since the last one began: the group commit. */
  private startSync(): void {
    const group = (this.syncing = this.written)
    this.written = []
    fs.fdatasync(this.fd, (error) => {
      if (error) return this.fail(group, error)
      this.stats.commits++
      this.syncing = []
      if (this.written.length > 0) this.startSync()
      this.committed(group)
      // A batch held back for compaction (see write) goes now that nothing is in flight.
      if (this.open && !this.scheduled && this.syncing.length === 0) this.write()
    })
  }

  private committed(batches: Batch[]): void {
    for (const batch of batches) {
      this.durableRecords += batch.lines.length
      batch.resolve()
    }
    for (const listener of this.listeners) listener()
  }

  private replaceWith(records: readonly unknown[]): RecordPosition[] {
    const lines = records.map((r) => JSON.stringify(r) + '\n')
    const text = lines.join('')
    writeFileAtomic(this.file, text)
    this.generation++
    this.closeEdit()
    fs.closeSync(this.fd)
    this.fd = fs.openSync(this.file, 'a', 0o600)
    this.bytes = Buffer.byteLength(text)
    this.writtenBytes = this.bytes
    this.deferred = []
    let offset = 0
    return lines.map((line) => {
      const length = Buffer.byteLength(line)
      const position = { generation: this.generation, offset, length: length - 1 }
      offset += length
      return position
    })
  }

  private closeEdit(): void {
    if (this.editFd !== undefined) fs.closeSync(this.editFd)
    this.editFd = undefined
  }

  private fail(batches: Batch[], cause: Error): void {
    this.failure = new Error(`cannot write ${this.file}: ${cause.message}`, { cause })
    for (const batch of [...batches, ...this.written, ...this.syncing, ...(this.open ? [this.open] : [])])
      batch.reject(this.failure)
    this.written = []
    this.syncing = []
    this.open = undefined
    for (const listener of this.listeners) listener()
  }
}

function newBatch(): Batch {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)))
  // A failure is reported through sync() and append() callers; an unobserved batch must not crash the process.
  done.catch(() => undefined)
  return { lines: [], done, resolve, reject }
}
