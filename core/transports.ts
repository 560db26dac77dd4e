// The transports a client has; the core's only job with them is to know them and pass their datagrams on.
import type { Hooks } from './hooks'
import type { Datagram, Transport } from './types'

export class TransportRegistry {
  private readonly list: Transport[] = []

  constructor(
    private readonly hooks: Hooks,
    private readonly onDatagram: (datagram: Datagram) => void,
  ) {}

  /** A transport hands every datagram it receives to the core here. */
  receive(datagram: Datagram): void {
    this.onDatagram(datagram)
  }

  register(transport: Transport): void {
    if (this.list.some((t) => t.name === transport.name))
      throw new Error(`transport ${transport.name} is already registered`)
    this.list.push(transport)
    this.hooks.transport.call(transport)
  }

  /** The first registered transport: the one path plugins use unless told otherwise. */
  primary(): Transport {
    const transport = this.list[0]
    if (!transport) throw new Error('no transport is registered: add the "udp" plugin to the config')
    return transport
  }

  all(): readonly Transport[] {
    return this.list
  }
}
