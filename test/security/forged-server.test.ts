// Issue 11, finding 1: datagrams with forged source addresses between clients and the server. Each attack is sent from a
// raw socket with the victim's or the server's address and port, exactly as the attack review sent it; none is acted on
// and the victims' conversation goes on.
import { expect } from 'chai'
import { createPublicKey } from 'node:crypto'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Endpoint } from '../../core/types'
import { encodeFrame, encodeJson, FrameKind } from '../../core/wire'
import type { RendezvousServer } from '../../server'
import { requireForge, sendForged } from '../support/forge'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp, FIXTURE_KEYS } from '../support/processes'

const publicPem = (name: string) =>
  createPublicKey(fs.readFileSync(path.join(FIXTURE_KEYS, `${name}.pem`)))
    .export({ type: 'spki', format: 'pem' })
    .toString()
const plugins = [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false } },
  { resolve: 'rsa', options: {} },
]

/** The endpoint the server sees for an in-process client on loopback. */
const endpointOf = (client: TestClient): Endpoint => ({
  address: '127.0.0.1',
  port: client.client.container.cradle.transports.primary().local().port,
})

/** Every datagram a client receives from `from`, recorded before any plugin sees it. */
function wiretap(client: TestClient, from: Endpoint): Buffer[] {
  const seen: Buffer[] = []
  client.client.hooks.receive.tap({ name: 'wiretap', stage: -1000 }, (datagram) => {
    if (datagram.from.address === from.address && datagram.from.port === from.port)
      seen.push(Buffer.from(datagram.bytes))
    return undefined
  })
  return seen
}

/** A socket for the attacker: it records what reaches it. */
async function attackerSocket(): Promise<{ endpoint: Endpoint; received: Buffer[]; close: () => void }> {
  const socket = dgram.createSocket('udp4')
  const received: Buffer[] = []
  socket.on('message', (bytes) => received.push(bytes))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return { endpoint: { address: '127.0.0.1', port: socket.address().port }, received, close: () => socket.close() }
}

describe('forged datagrams between clients and the server (raw sockets, forged source addresses)', function () {
  this.timeout(30_000)
  before(requireForge)
  after(cleanupTemp)

  let server: RendezvousServer
  let serverAt: Endpoint
  /** Every datagram the server received, with its source. */
  let serverSaw: Array<{ bytes: Buffer; from: Endpoint }>
  let alice: TestClient
  let bob: TestClient
  const cleanups: Array<() => unknown> = []

  beforeEach(async () => {
    serverSaw = []
    server = await startServer({ observe: (bytes, from) => void serverSaw.push({ bytes: Buffer.from(bytes), from }) })
    serverAt = server.address()
    alice = makeClient('alice', `127.0.0.1:${serverAt.port}`, { plugins })
    bob = makeClient('bob', `127.0.0.1:${serverAt.port}`, { plugins })
    await Promise.all([alice.client.start(), bob.client.start()])
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
    await Promise.all([alice.client.stop(), bob.client.stop()])
    await server.close()
  })

  /** alice writes to bob and bob reads it: the conversation goes on. */
  async function conversationGoesOn(text: string): Promise<void> {
    await alice.client.send('bob', text)
    await bob.message(text)
  }

  it("an intro forged from the server's address is not acted on: no punch to the attacker, the first message reaches bob", async () => {
    const mallory = await attackerSocket()
    cleanups.push(mallory.close)
    const dropped = alice.client.stats.dropped
    const intro = {
      t: 'intro',
      peer: { name: 'bob', key: publicPem('carol'), public: mallory.endpoint, local: [], nat: 'eim' },
      token: 'ab'.repeat(16),
    }
    await sendForged(serverAt, endpointOf(alice), encodeJson(FrameKind.Server, intro))
    // The same as a sealed frame it cannot seal: garbage under the CHANNEL kind.
    await sendForged(serverAt, endpointOf(alice), encodeFrame(FrameKind.Channel, Buffer.alloc(200, 7)))
    await conversationGoesOn('first contact, to the real bob')
    expect(alice.client.stats.dropped - dropped, 'both forgeries dropped and counted').to.equal(2)
    expect(mallory.received, 'datagrams alice sent the attacker').to.have.length(0)
    expect(alice.client.fingerprintOf('bob'), "the safety numbers match: alice has bob's key").to.equal(
      bob.client.fingerprintOf('alice'),
    )
  })

  it('a 14-byte bye forged from bob\'s endpoint does not log bob out, and nobody else can then register "bob"', async () => {
    const bye = encodeJson(FrameKind.Server, { t: 'bye' })
    expect(bye.length).to.equal(14)
    const unregistered = server.stats.unregistered
    await sendForged(endpointOf(bob), serverAt, bye)
    // A CHANNEL frame from bob's endpoint that does not open (the attacker has no keys) changes nothing either.
    const forged = server.stats.forged
    await sendForged(endpointOf(bob), serverAt, encodeFrame(FrameKind.Channel, Buffer.alloc(60, 1)))
    await conversationGoesOn('still here')
    expect(server.stats.unregistered - unregistered, 'the clear bye, counted and ignored').to.equal(1)
    expect(server.stats.forged - forged, 'the sealed forgery, counted and dropped').to.equal(1)
    expect(server.online).to.equal(2)
    const mallory = makeClient('bob', `127.0.0.1:${serverAt.port}`, { plugins, key: 'carol' })
    cleanups.push(() => mallory.client.stop())
    await mallory.client.start()
    const refusal = await mallory.waitFor('problem', mallory.problems, (p) => p.code === 'registration-refused')
    expect(refusal.message).to.include('belongs to another key')
    await conversationGoesOn('and still bob')
  })

  it("a connect forged from bob's endpoint introduces nobody and reflects nothing larger than itself", async () => {
    const toBob = wiretap(bob, serverAt)
    const toAlice = wiretap(alice, serverAt)
    const introductions = server.stats.introductions
    const connect = encodeJson(FrameKind.Server, { t: 'connect', rid: '1', to: 'alice' })
    await sendForged(endpointOf(bob), serverAt, connect)
    // A round trip of each through the server after it: whatever the forgery caused has arrived by then. What the
    // server says to a registered client on its own account comes sealed; a reply in clear can only answer the forgery.
    await Promise.all([alice.client.peers(), bob.client.peers()])
    const clear = (seen: Buffer[]) => seen.filter((bytes) => bytes[2] === FrameKind.Server)
    expect(server.stats.introductions, 'introductions made').to.equal(introductions)
    expect(clear(toAlice), 'datagrams the forgery sent alice').to.have.length(0)
    expect(clear(toBob).length, 'datagrams the forgery sent bob').to.be.at.most(1)
    for (const reply of clear(toBob)) expect(reply.length, 'the reflected reply').to.be.at.most(connect.length)
    process.stdout.write(
      `      forged connect of ${connect.length} bytes: ${
        clear(toBob)
          .map((b) => b.length)
          .join(', ') || 'no'
      } bytes back to bob, none to alice\n`,
    )
    await conversationGoesOn('no introduction was forged')
  })

  it("a CHANNEL frame replayed from bob's endpoint is dropped: every counter opens once", async () => {
    const bobAt = endpointOf(bob)
    await bob.client.peers()
    const captured = serverSaw
      .filter(({ bytes, from }) => from.port === bobAt.port && bytes[2] === FrameKind.Channel)
      .map(({ bytes }) => bytes)
    expect(captured.length).to.be.above(0)
    const forged = server.stats.forged
    await sendForged(bobAt, serverAt, ...captured)
    await bob.client.peers() // answered: bob's channel goes on past the replays
    expect(server.stats.forged - forged).to.equal(captured.length)
    await conversationGoesOn('replays changed nothing')
  })
})
