// Two apps talking through ReliableLinks over a LossyNetwork, with what a real app would persist kept apart,
// so tests can restart a link and check exactly-once delivery across the restart.
import { ReliableLink, type ReliableLinkOptions } from '../link'
import { LossyNetwork, prng, type LossyOptions } from '../lossy'
import { MemoryDeliveredStore } from '../store'

export interface Received {
  id: string
  payload: Buffer
}

/** One app: its durable state (history, seen ids, outbox) outlives any one link instance. */
export class App {
  readonly store = new MemoryDeliveredStore()
  /** Delivered messages, in delivery order: the app's history. */
  readonly received: Received[] = []
  readonly acked: string[] = []
  readonly submitted: string[] = []
  /** Persisted outbox: (id, payload) from submit until onAcked. */
  readonly outbox = new Map<string, Buffer>()
  readonly errors: Error[] = []
  link!: ReliableLink
  epoch = 0
  private incarnation = 0

  constructor(
    private readonly net: LossyNetwork,
    readonly name: string,
    private readonly peer: string,
    private readonly options: Partial<ReliableLinkOptions> & { deliverDelayMs?: number } = {},
  ) {
    this.start()
  }

  /** A new link with a higher epoch, as after a process restart; then the persisted outbox is submitted again. */
  restart(): void {
    this.link.close()
    this.start()
    for (const [id, payload] of this.outbox) this.link.submit(id, payload)
  }

  submit(id: string, payload: Buffer): void {
    this.outbox.set(id, payload)
    this.submitted.push(id)
    this.link.submit(id, payload)
  }

  private start(): void {
    const incarnation = ++this.incarnation
    this.epoch = incarnation * 10
    const { deliverDelayMs, ...linkOptions } = this.options
    this.link = new ReliableLink({
      epoch: this.epoch,
      clock: this.net.clock,
      output: this.net.sendTo(this.peer),
      store: this.store,
      deliver: (id, payload) => {
        if (deliverDelayMs === undefined) {
          this.received.push({ id, payload })
          return
        }
        // A slow durable write; if this incarnation "crashed" meanwhile, the write never completes.
        return new Promise<void>((resolve) =>
          this.net.schedule(this.net.now + deliverDelayMs, () => {
            if (incarnation !== this.incarnation) return
            this.received.push({ id, payload })
            resolve()
          }),
        )
      },
      onAcked: (id) => {
        this.acked.push(id)
        this.outbox.delete(id)
      },
      onError: (error) => this.errors.push(error),
      ...linkOptions,
    })
    this.net.attach(this.name, this.link)
  }
}

export function pair(network: LossyOptions, options: Partial<ReliableLinkOptions> & { deliverDelayMs?: number } = {}) {
  const net = new LossyNetwork(network)
  const a = new App(net, 'a', 'b', options)
  const b = new App(net, 'b', 'a', options)
  return { net, a, b }
}

/** Deterministic bytes, different for each message, so misplaced fragments show. */
export function payloadOf(seed: number, size: number): Buffer {
  const random = prng(seed)
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (random() * 256) | 0
  return out
}

/** All of `from`'s submissions reached `to` once each, in order and intact, and `from` saw every one acknowledged. */
export function complete(from: App, to: App): boolean {
  return (
    from.outbox.size === 0 && to.received.length >= from.submitted.length && from.acked.length >= from.submitted.length
  )
}
