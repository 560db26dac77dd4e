// Which key owns which name, online or not: a name stays bound to the key that first registered it until its owner
// releases it or stays away for `releaseAfterMs` (90 days by default). Look-alikes are one name (nameSkeleton), so
// "alice", "аlice" (Cyrillic а), "ALICE" and "ａｌｉｃｅ" cannot belong to different keys. Kept on disk in the data dir.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { nameSkeleton } from '../protocol'

export const NAMES_FILE = 'names.json'
export const DEFAULT_RELEASE_AFTER_MS = 90 * 24 * 60 * 60_000

interface Binding {
  /** The name as its owner registered it. */
  name: string
  /** SHA-256 (hex) of the owner's key PEM. */
  key: string
  /** When its owner was last registered (ms). */
  seen: number
}

export type ClaimResult = { ok: true } | { ok: false; code: 'name_taken' | 'full'; message: string }

/** A key as the book keeps it: SHA-256 (hex) of its PEM. */
export const keyId = (pem: string) => createHash('sha256').update(pem).digest('hex')
const days = (ms: number) => Math.round(ms / 86_400_000)
const ago = (ms: number) => (ms < 86_400_000 ? 'today' : `${days(ms)} day(s) ago`)

/** Why `name` is refused: `boundName` (itself or a look-alike) belongs to another key, whose owner was here `absentMs` ago. */
export function takenMessage(name: string, boundName: string, absentMs: number, releaseAfterMs: number): string {
  const like = boundName === name ? `the name "${name}"` : `"${name}" looks like "${boundName}", which`
  return `${like} belongs to another key (its owner was last here ${ago(absentMs)}; a name is released after ${days(releaseAfterMs)} days away)`
}

export class NameBook {
  private readonly bindings = new Map<string, Binding>()
  private dirty = false

  constructor(private readonly options: { file?: string; releaseAfterMs?: number; maxNames?: number } = {}) {
    if (options.file) this.load(options.file)
  }

  /** The book in a data directory (`names.json`), or in memory only without one. */
  static in(dataDir: string | undefined, options: { releaseAfterMs?: number; maxNames?: number } = {}): NameBook {
    return new NameBook({ ...options, file: dataDir === undefined ? undefined : path.join(dataDir, NAMES_FILE) })
  }

  get size(): number {
    return this.bindings.size
  }

  /** How long a name stays bound while its owner is away (ms). */
  get releaseAfter(): number {
    return this.releaseAfterMs
  }

  private get releaseAfterMs(): number {
    return this.options.releaseAfterMs ?? DEFAULT_RELEASE_AFTER_MS
  }

  /**
   * A registration of `name` under `key`: bound to it if free (or released by absence), refreshed if it is its owner's,
   * refused if another key owns it or a name that looks like it.
   */
  claim(name: string, key: string, now: number): ClaimResult {
    const skeleton = nameSkeleton(name)
    const id = keyId(key)
    const bound = this.bindings.get(skeleton)
    if (bound && bound.key !== id && now - bound.seen < this.releaseAfterMs) {
      return {
        ok: false,
        code: 'name_taken',
        message: takenMessage(name, bound.name, now - bound.seen, this.releaseAfterMs),
      }
    }
    if (!bound || bound.key !== id) {
      // Full: make room from names whose owners stayed away past the release, oldest first; never from a live binding.
      if (this.bindings.size >= (this.options.maxNames ?? 100_000) && !this.releaseOldest(now)) {
        return { ok: false, code: 'full', message: 'the server holds as many names as it can; try later' }
      }
    }
    this.bindings.delete(skeleton) // re-inserted: the Map's order is then least recently seen first
    this.bindings.set(skeleton, { name, key: id, seen: now })
    this.dirty = true
    return { ok: true }
  }

  /**
   * `name` is `key`'s: the shared book (Redis) said so, and it decides over this one, which may not have heard of a
   * release or a transfer at another instance. Bounded as `claim` is: past `maxNames`, only if a released name makes room.
   */
  bind(name: string, key: string, now: number): void {
    const skeleton = nameSkeleton(name)
    if (
      !this.bindings.has(skeleton) &&
      this.bindings.size >= (this.options.maxNames ?? 100_000) &&
      !this.releaseOldest(now)
    )
      return
    this.bindings.delete(skeleton)
    this.bindings.set(skeleton, { name, key: keyId(key), seen: now })
    this.dirty = true
  }

  /** Every binding (the key as its SHA-256): what an instance gives a Redis that restarted empty. */
  entries(): Array<{ name: string; key: string; seen: number }> {
    return [...this.bindings.values()].map(({ name, key, seen }) => ({ name, key, seen }))
  }

  /** The owner was here at `now` (a refresh, or it left): its absence counts from then. */
  seen(name: string, key: string, now: number): void {
    const bound = this.bindings.get(nameSkeleton(name))
    if (!bound || bound.key !== keyId(key)) return
    bound.seen = now
    this.dirty = true
  }

  /** Its owner gives the name up; true if it was theirs. */
  release(name: string, key: string): boolean {
    const skeleton = nameSkeleton(name)
    if (this.bindings.get(skeleton)?.key !== keyId(key)) return false
    this.bindings.delete(skeleton)
    this.dirty = true
    return true
  }

  /** Drops the bindings whose owners stayed away past the release; returns their names. */
  expire(now: number): string[] {
    const gone = [...this.bindings].filter(([, b]) => now - b.seen >= this.releaseAfterMs)
    for (const [skeleton] of gone) this.bindings.delete(skeleton)
    if (gone.length) this.dirty = true
    return gone.map(([, b]) => b.name)
  }

  private releaseOldest(now: number): boolean {
    let oldest: [string, Binding] | undefined
    for (const entry of this.bindings) if (!oldest || entry[1].seen < oldest[1].seen) oldest = entry
    if (!oldest || now - oldest[1].seen < this.releaseAfterMs) return false
    this.bindings.delete(oldest[0])
    return true
  }

  /** Writes the book if it changed (atomically, 0600); a no-op in memory. */
  save(): void {
    if (!this.options.file || !this.dirty) return
    const temp = `${this.options.file}.${process.pid}.tmp`
    fs.writeFileSync(temp, JSON.stringify({ version: 1, names: [...this.bindings.values()] }), { mode: 0o600 })
    fs.renameSync(temp, this.options.file)
    this.dirty = false
  }

  private load(file: string): void {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    const parsed = JSON.parse(text) as { names?: unknown }
    if (!Array.isArray(parsed.names)) throw new Error(`${file} is not a udsu server's name book`)
    for (const entry of parsed.names as Binding[]) {
      if (typeof entry?.name === 'string' && typeof entry.key === 'string' && typeof entry.seen === 'number')
        this.bindings.set(nameSkeleton(entry.name), entry)
    }
  }
}
