// What the server answers to input nobody has authenticated: never one reply larger than its request (so a forged
// source gains nothing), and its rate limit holds for an address however many ports (sockets) it floods from.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { publicPem } from '../../core/test/support'
import type { Endpoint } from '../../core/types'
import {
  decodeFrame,
  decodeJson,
  encodeFrame,
  encodeJson,
  ephemeralKey,
  FrameKind,
  HELLO_PAD,
  MAPPING_PAD,
  PING_PAD,
  type JsonMessage,
} from '../../protocol'
import type { RendezvousServer } from '../../server'
import { DEFAULT_LIMITS } from '../../server'
import { startServer } from '../support/inprocess'

/** A raw UDP socket on 127.0.0.1 that keeps the replies it receives. */
class Probe {
  readonly replies: Buffer[] = []
  private readonly socket = dgram.createSocket('udp4')
  private waiter?: () => void

  static async open(): Promise<Probe> {
    const probe = new Probe()
    probe.socket.on('message', (bytes) => {
      probe.replies.push(bytes)
      probe.waiter?.()
    })
    await new Promise<void>((resolve) => probe.socket.bind(0, '127.0.0.1', resolve))
    return probe
  }

  send(bytes: Buffer, to: Endpoint): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, to.port, to.address, (e) => (e ? reject(e) : resolve())),
    )
  }

  /**
   * Sends `bytes` and returns every reply it got. A `hello` follows it as a marker: the server handles one source's
   * datagrams in order and answers each at once, so once the marker's cookie is back every reply to `bytes` is too.
   */
  async exchange(bytes: Buffer, to: Endpoint, second = false): Promise<Buffer[]> {
    const start = this.replies.length
    await this.send(bytes, to)
    const rid = randomBytes(4).toString('hex')
    // The second port answers only `mapping`: there a padded one is the marker.
    await this.send(
      encodeJson(
        FrameKind.Server,
        second ? { t: 'mapping', rid, pad: MAPPING_PAD } : { t: 'hello', rid, pad: HELLO_PAD },
      ),
      to,
    )
    const isMarker = (reply: Buffer) => decodeJson(decodeFrame(reply)?.body ?? Buffer.alloc(0))?.rid === rid
    for (let i = 0; i < 100 && !this.replies.slice(start).some(isMarker); i++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20)
        this.waiter = () => (clearTimeout(timer), resolve())
      })
    }
    const got = this.replies.slice(start)
    if (!got.some(isMarker)) throw new Error('the marker hello was not answered')
    return got.filter((reply) => !isMarker(reply))
  }

  close(): void {
    this.socket.close()
  }
}

const frame = (message: JsonMessage) => encodeJson(FrameKind.Server, message)

describe('the server and unauthenticated input', function () {
  this.timeout(30_000)
  let server: RendezvousServer
  let at: Endpoint
  beforeEach(async () => {
    server = await startServer({ limits: { ...DEFAULT_LIMITS, registrationsPerSecond: 1000, registrationBurst: 1000 } })
    at = server.address()
  })
  afterEach(() => server.close())

  it('answers no request with more bytes than it had, one reply at a time', async () => {
    const probe = await Probe.open()
    const cookie = decodeJson(
      decodeFrame((await probe.exchange(frame({ t: 'hello', rid: 'a', pad: HELLO_PAD }), at))[0])!.body,
    )!.cookie as string
    const register = {
      t: 'register',
      rid: 'b',
      cookie,
      name: 'alice',
      key: publicPem('alice'),
      local: [],
      eph: ephemeralKey().public,
    }
    const alt = { address: at.address, port: server.altAddress()!.port }
    const requests: Array<[string, Buffer, Endpoint?]> = [
      ['hello, padded', frame({ t: 'hello', rid: 'a', pad: HELLO_PAD })],
      ['hello, short pad', frame({ t: 'hello', rid: 'a', pad: 'x'.repeat(64) })],
      ['hello, no pad', frame({ t: 'hello', rid: 'a' })],
      ['register, bad cookie', frame({ ...register, cookie: '0'.repeat(32) })],
      ['register, bad key', frame({ ...register, rid: 'c', key: 'not a key' })],
      ['register (challenge)', frame(register)],
      ['prove, bad signature', frame({ t: 'prove', rid: 'd', sig: randomBytes(384).toString('base64') })],
      ['prove, nothing waits', frame({ t: 'prove', rid: 'd', sig: 'AAAA' })],
      ['ping in clear', frame({ t: 'ping', rid: 'e', pad: PING_PAD })],
      ['ping in clear, no pad', frame({ t: 'ping', rid: 'e' })],
      ['list in clear', frame({ t: 'list', rid: 'f' })],
      ['connect in clear', frame({ t: 'connect', rid: '1', to: 'alice' })],
      ['relay in clear', frame({ t: 'relay', rid: '1', to: 'alice' })],
      ['bye in clear', frame({ t: 'bye' })],
      ['a CHANNEL frame, unregistered', encodeFrame(FrameKind.Channel, randomBytes(40))],
      ['a CHANNEL frame, tiny', encodeFrame(FrameKind.Channel, randomBytes(1))],
      [
        'a RELAY frame in clear',
        encodeFrame(
          FrameKind.Relay,
          Buffer.concat([Buffer.of(5), Buffer.from('alice'), encodeFrame(FrameKind.Data, randomBytes(8))]),
        ),
      ],
      ['mapping, padded (second port)', frame({ t: 'mapping', rid: '9', pad: MAPPING_PAD }), alt],
      ['mapping, unpadded (second port)', frame({ t: 'mapping', rid: '9' }), alt],
    ]
    const rows: string[] = []
    for (const [what, bytes, to] of requests) {
      const replies = await probe.exchange(bytes, to ?? at, to !== undefined)
      rows.push(`${what}: ${bytes.length} → ${replies.map((r) => r.length).join(' + ') || '—'}`)
      expect(replies.length, `${what}: replies`).to.be.at.most(1)
      for (const reply of replies)
        expect(reply.length, `${what}: reply of ${reply.length} to ${bytes.length} bytes`).to.be.at.most(bytes.length)
    }
    process.stdout.write(rows.map((row) => `      ${row}\n`).join(''))
    probe.close()
  })

  it('limits an address, not an endpoint: 50 sockets of one address get no more than one socket would', async () => {
    const sockets = await Promise.all(Array.from({ length: 50 }, () => Probe.open()))
    const ping = frame({ t: 'ping', rid: '1', pad: PING_PAD })
    const limited = server.stats.limited
    const received = server.stats.received
    // Sent in rounds the server's socket buffer holds (a full buffer would drop them before the limit could), each
    // round once the server has counted the last: far faster than the bucket refills.
    for (const [n, socket] of sockets.entries()) {
      for (let i = 0; i < 8; i++) await socket.send(ping, at)
      for (let i = 0; i < 100 && server.stats.received - received < (n + 1) * 8; i++)
        await new Promise((resolve) => setImmediate(resolve))
    }
    const served = 400 - (server.stats.limited - limited)
    process.stdout.write(
      `      50 sockets × 8 datagrams from 127.0.0.1: ${server.stats.limited - limited} limited, ${served} served (burst ${DEFAULT_LIMITS.burst})\n`,
    )
    expect(server.stats.received - received).to.equal(400)
    // One bucket for the address: its burst, and what refills while the 400 arrive (well under a second).
    expect(served).to.be.at.most(DEFAULT_LIMITS.burst + DEFAULT_LIMITS.perSecond)
    for (const socket of sockets) socket.close()
  })
})
