// The UDP socket both the udp plugin and hole-punch's birthday sockets are made of, on real loopback sockets.
import { expect } from 'chai'
import type { Endpoint } from '../types'
import { UdpSocket } from '../udp-socket'
import { rejection } from './support'

describe('UdpSocket', () => {
  const open: UdpSocket[] = []
  afterEach(async () => void (await Promise.all(open.splice(0).map((s) => s.close()))))
  const socket = (onMessage: (bytes: Buffer, from: Endpoint, via: UdpSocket) => void = () => undefined) => {
    const s = new UdpSocket('test', onMessage)
    open.push(s)
    return s
  }

  it('carries a datagram between two sockets and names the sender and the receiving socket', async () => {
    let received!: (datagram: { bytes: Buffer; from: Endpoint; via: UdpSocket }) => void
    const got = new Promise<{ bytes: Buffer; from: Endpoint; via: UdpSocket }>((resolve) => (received = resolve))
    const a = socket()
    const b = socket((bytes, from, via) => received({ bytes, from, via }))
    await Promise.all([a.bind('127.0.0.1'), b.bind('127.0.0.1')])
    await a.send(Buffer.from('hi'), b.local())
    const { bytes, from, via } = await got
    expect(bytes.toString()).to.equal('hi')
    expect(from).to.deep.equal(a.local())
    expect(via).to.equal(b)
  })

  it('refuses a port that is taken, says the socket is closed after close, and closes once', async () => {
    const a = socket()
    await a.bind('127.0.0.1')
    const b = socket()
    expect((await rejection(b.bind('127.0.0.1', a.local().port))).message).to.match(/EADDRINUSE/)
    await a.close()
    expect(a.isClosed).to.equal(true)
    expect((await rejection(a.send(Buffer.from('x'), { address: '127.0.0.1', port: 9 }))).message).to.equal(
      'test socket is closed',
    )
    await a.close() // a second close resolves at once
  })
})
