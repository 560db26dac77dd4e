// One IPv4 UDP socket as a Transport: bind, send, close. The udp plugin's socket and hole-punch's birthday sockets are
// both one of these, each with what is its own on top.
import * as dgram from 'node:dgram'
import type { Endpoint, Transport } from './types'

export class UdpSocket implements Transport {
  protected readonly socket = dgram.createSocket({ type: 'udp4' })
  private closed = false

  constructor(
    readonly name: string,
    onMessage: (bytes: Buffer, from: Endpoint, via: UdpSocket) => void,
  ) {
    this.socket.on('message', (bytes, rinfo) => onMessage(bytes, { address: rinfo.address, port: rinfo.port }, this))
  }

  /** Binds to `host`:`port` (0: the system picks); rejects with the system's error, e.g. EADDRINUSE. */
  bind(host = '0.0.0.0', port = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject)
      this.socket.bind(port, host, () => {
        this.socket.off('error', reject)
        resolve()
      })
    })
  }

  local(): Endpoint {
    const { address, port } = this.socket.address()
    return { address, port }
  }

  send(bytes: Uint8Array, to: Endpoint): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name} socket is closed`))
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, to.port, to.address, (error) => (error ? reject(error) : resolve())),
    )
  }

  /** Closes once; later calls resolve at once. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.closed = true
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Errors after bind (an ICMP error on send, a socket gone bad): without a handler Node would throw them. */
  onError(handler: (error: Error) => void): void {
    this.socket.on('error', handler)
  }
}
