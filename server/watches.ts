// Who waits for a name: asked to be introduced to it while it was offline, or was introduced to it lately. When that
// name registers, the server introduces the two at once, so what the asker queued goes out the moment the peer is back,
// and a peer that restarted, moved or changed its key is found without waiting for a retry or a keepalive. Bounded,
// and forgotten after `ttlMs`; a watcher that asks again (or is introduced again) renews its watch.

export class Watches {
  /** target → watcher → expiresAt */
  private readonly byTarget = new Map<string, Map<string, number>>()
  private readonly perWatcher = new Map<string, number>()
  private total = 0

  constructor(
    private readonly ttlMs: number,
    /** Names one watcher may wait for at once: the rest of its asking only goes unanswered until it retries. */
    private readonly maxPerWatcher: number,
    private readonly maxTotal: number,
  ) {}

  get size(): number {
    return this.total
  }

  /** `watcher` asked for `target`, which is offline. Ignored past a bound (the asker's own retries still find it). */
  add(watcher: string, target: string, now: number): void {
    const watchers = this.byTarget.get(target)
    if (watchers?.has(watcher)) return void watchers.set(watcher, now + this.ttlMs)
    if (this.total >= this.maxTotal) this.expire(now)
    if (this.total >= this.maxTotal || (this.perWatcher.get(watcher) ?? 0) >= this.maxPerWatcher) return
    if (watchers) watchers.set(watcher, now + this.ttlMs)
    else this.byTarget.set(target, new Map([[watcher, now + this.ttlMs]]))
    this.perWatcher.set(watcher, (this.perWatcher.get(watcher) ?? 0) + 1)
    this.total++
  }

  /** The watchers still waiting for `target`, who are forgotten now. */
  take(target: string, now: number): string[] {
    const watchers = this.byTarget.get(target)
    if (!watchers) return []
    this.byTarget.delete(target)
    const waiting: string[] = []
    for (const [watcher, expiresAt] of watchers) {
      this.forget(watcher)
      if (expiresAt > now) waiting.push(watcher)
    }
    return waiting
  }

  /** Drops every watch past its time. */
  expire(now: number): void {
    for (const [target, watchers] of this.byTarget) {
      for (const [watcher, expiresAt] of watchers) {
        if (expiresAt > now) continue
        watchers.delete(watcher)
        this.forget(watcher)
      }
      if (watchers.size === 0) this.byTarget.delete(target)
    }
  }

  private forget(watcher: string): void {
    const count = (this.perWatcher.get(watcher) ?? 1) - 1
    if (count > 0) this.perWatcher.set(watcher, count)
    else this.perWatcher.delete(watcher)
    this.total--
  }
}
