// What this client knows of other users: their keys as introduced, whether they are online, and the path to them.
import type { PathKind, PeerInfo } from './types'

/** Names remembered at most: an introduction costs a server (or a forger) nothing, so the table must not grow with them. */
export const MAX_PEERS = 1024

export class PeerDirectory {
  /** Least recently updated first: the order in which silent peers are forgotten. */
  private readonly byName = new Map<string, PeerInfo>()
  private readonly forgetListeners: Array<(name: string) => void> = []

  constructor(private readonly maxPeers = MAX_PEERS) {}

  get(name: string): PeerInfo | undefined {
    return this.byName.get(name)
  }

  /** Merges what is newly learned about a peer into what was known. Past `maxPeers`, forgets the stalest peer without a path. */
  update(name: string, change: Partial<PeerInfo>): PeerInfo {
    const merged: PeerInfo = { ...(this.byName.get(name) ?? { name, online: false }), ...change, name }
    this.byName.delete(name) // re-inserted as the newest
    this.byName.set(name, merged)
    if (this.byName.size > this.maxPeers) this.forgetStalest(name)
    return merged
  }

  setPath(name: string, path: PathKind | undefined): void {
    this.update(name, { path })
  }

  all(): PeerInfo[] {
    return [...this.byName.values()]
  }

  get size(): number {
    return this.byName.size
  }

  /** Calls `listener` with each name forgotten to keep the table bounded, so a plugin can drop what it keeps for it. */
  onForget(listener: (name: string) => void): void {
    this.forgetListeners.push(listener)
  }

  private forgetStalest(keep: string): void {
    for (const [name, info] of this.byName) {
      // A peer with a path is in a conversation; only introduced-but-silent ones are forgotten.
      if (name === keep || info.path) continue
      this.byName.delete(name)
      for (const listener of this.forgetListeners) listener(name)
      return
    }
  }
}
