// A transport whose datagrams never touch a socket: they go through a switch inside the process. A model for transport
// authors, and a second implementation that keeps the compliance suite honest about what it assumes of udp.
import { definePlugin, type CoreServices, type PluginDefinition } from '../core/plugin'
import type { Endpoint, Transport } from '../core/types'

/** The address every memory transport reports: its port tells them apart. */
export const MEMORY_ADDRESS = 'memory'

/** Connects memory transports: each attached one gets a port; a datagram to a port nobody holds is dropped, as on UDP. */
export class MemorySwitch {
  private readonly attached = new Map<number, (bytes: Buffer, from: Endpoint) => void>()
  private nextPort = 1

  attach(receive: (bytes: Buffer, from: Endpoint) => void): number {
    const port = this.nextPort++
    this.attached.set(port, receive)
    return port
  }

  detach(port: number): void {
    this.attached.delete(port)
  }

  /** Delivers a copy on a later turn of the event loop, as a socket would: a sender never runs its receiver's code. */
  forward(bytes: Uint8Array, from: Endpoint, to: Endpoint): void {
    const receive = to.address === MEMORY_ADDRESS ? this.attached.get(to.port) : undefined
    if (!receive) return
    const copy = Buffer.from(bytes)
    setImmediate(() => receive(copy, { ...from }))
  }
}

/**
 * A plugin providing a `memory` transport on `network` (a new switch when absent). It opens at start and closes at stop
 * with the stages the udp plugin uses; sending after stop rejects.
 */
export function memoryTransport(
  network = new MemorySwitch(),
): PluginDefinition<Record<string, never>, Pick<CoreServices, 'hooks' | 'transports'>> {
  return definePlugin<Record<string, never>, Pick<CoreServices, 'hooks' | 'transports'>>({
    name: 'memory',
    provides: ['transport'],
    create({ hooks, transports }) {
      let port: number | undefined
      const transport: Transport = {
        name: 'memory',
        local() {
          if (port === undefined) throw new Error('the memory transport is not open: it opens at start')
          return { address: MEMORY_ADDRESS, port }
        },
        async send(bytes, to) {
          if (port === undefined) throw new Error('the memory transport is closed')
          network.forward(bytes, { address: MEMORY_ADDRESS, port }, to)
        },
      }
      hooks.start.tapPromise({ name: 'memory', stage: -100 }, async () => {
        port = network.attach((bytes, from) => transports.receive({ bytes, from, transport }))
        transports.register(transport)
      })
      hooks.stop.tapPromise({ name: 'memory', stage: 100 }, async () => {
        if (port !== undefined) network.detach(port)
        port = undefined
      })
    },
  })
}
