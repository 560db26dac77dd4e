// The UDP transport: one socket per client, shared by the rendezvous protocol and every peer.
import {
  definePlugin,
  number,
  object,
  optional,
  string,
  UdpSocket,
  validate,
  type CoreServices,
  type Endpoint,
} from '../../core'

const optionsSchema = object({
  /** Address to bind; 0.0.0.0 listens on every interface. */
  host: optional(string({ pattern: /^[\d.]+$/, hint: 'must be an IPv4 address' }), '0.0.0.0'),
  /** Port to bind; 0 lets the system choose. */
  port: optional(number({ min: 0, max: 65535, integer: true }), 0),
})

/** Socket receive buffer asked for: a burst of a reliable window (hundreds of datagrams) overflows the default
 *  (~208 KiB; each small datagram costs ~1 KiB of it). The system caps it (Linux: net.core.rmem_max). */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024

export type UdpOptions = NonNullable<ReturnType<typeof optionsSchema>>

/** The client's one UDP socket, shared by the rendezvous protocol and every peer. */
export class UdpTransport extends UdpSocket {
  constructor(onMessage: (bytes: Buffer, from: Endpoint) => void) {
    super('udp', (bytes, from) => onMessage(bytes, from))
  }

  /**
   * Asks for a receive buffer of `bytes` (after bind) and returns what the system granted (Linux doubles the request
   * and caps it at 2 × rmem_max). Never lowers the default; where the request is refused (macOS past
   * kern.ipc.maxsockbuf), tries half.
   */
  growRecvBuffer(bytes: number): number {
    const before = this.socket.getRecvBufferSize()
    for (let ask = bytes; ask * 2 > before; ask = Math.floor(ask / 2)) {
      try {
        this.socket.setRecvBufferSize(ask)
        break
      } catch {
        // Above what the system allows to an unprivileged process here: try half.
      }
    }
    return this.socket.getRecvBufferSize()
  }
}

export default definePlugin<UdpOptions, Pick<CoreServices, 'hooks' | 'transports' | 'logger'>>({
  name: 'udp',
  provides: ['transport'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, transports, logger }, options) {
    const transport = new UdpTransport((bytes, from) => transports.receive({ bytes, from, transport }))
    // Transports open before path plugins start, and close after everything else has said goodbye.
    hooks.start.tapPromise({ name: 'udp', stage: -100 }, async () => {
      await transport.bind(options.host, options.port).catch((error: NodeJS.ErrnoException) => {
        throw new Error(bindProblem(error, options))
      })
      // Only now: a failed bind is the start's failure, told once, not also a socket error in the log.
      transport.onError((error) => logger.warn(`udp socket error: ${error.message}`))
      const recvBufferBytes = transport.growRecvBuffer(RECV_BUFFER_BYTES)
      transports.register(transport)
      logger.debug('udp bound', { local: transport.local(), recvBufferBytes })
    })
    hooks.stop.tapPromise({ name: 'udp', stage: 100 }, () => transport.close().catch(() => undefined))
  },
})

/** The bind failure in words a person can act on: which port, and what to change. */
function bindProblem(error: NodeJS.ErrnoException, { host, port }: UdpOptions): string {
  if (error.code === 'EADDRINUSE')
    return `port ${port} is in use by another program: set udp's port option to a free port, or to 0 for any`
  if (error.code === 'EACCES') return `no permission to bind port ${port}: choose a port above 1023, or 0 for any`
  if (error.code === 'EADDRNOTAVAIL')
    return `${host} is not an address of this machine: set udp's host option to one, or to 0.0.0.0`
  return `cannot bind ${host}:${port}: ${error.message}`
}
