// What this client knows of other users: their keys as introduced, whether they are online, and the path to them.
import type { PathKind, PeerInfo } from './types'

export class PeerDirectory {
  private readonly byName = new Map<string, PeerInfo>()

  get(name: string): PeerInfo | undefined {
    return this.byName.get(name)
  }

  /** Merges what is newly learned about a peer into what was known. */
  update(name: string, change: Partial<PeerInfo>): PeerInfo {
    const merged: PeerInfo = { ...(this.byName.get(name) ?? { name, online: false }), ...change, name }
    this.byName.set(name, merged)
    return merged
  }

  setPath(name: string, path: PathKind | undefined): void {
    this.update(name, { path })
  }

  all(): PeerInfo[] {
    return [...this.byName.values()]
  }
}
