// Which message ids the app already has: the receiver consults it so that no id is delivered twice, across restarts.

/**
 * Remembers delivered message ids of one peer. The app backs it with disk so it survives restarts;
 * `seen` is synchronous (keep an index in memory), `markDelivered` may return a promise that resolves once durable.
 */
export interface DeliveredStore {
  seen(id: string): boolean
  markDelivered(id: string): void | Promise<void>
}

/** A DeliveredStore in memory: for tests, or for peers whose history is not kept. Grows with every id. */
export class MemoryDeliveredStore implements DeliveredStore {
  private readonly ids = new Set<string>()

  seen(id: string): boolean {
    return this.ids.has(id)
  }

  markDelivered(id: string): void {
    this.ids.add(id)
  }

  get size(): number {
    return this.ids.size
  }
}
