// Issue 11, findings 4 and 8: a client aimed at a third party, and a path steered with a sniffed token. Probes now carry
// a MAC under the introduction's token (which travels only sealed) and a sequence number; local candidates are punched
// only inside the client's own subnets, a few of them; an address that never answered gets a small budget.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import * as os from 'node:os'
import { admit, publicPem } from '../../core/test/support'
import type { Endpoint } from '../../core/types'
import { makeProbe } from '../../protocol'
import { decodeFrame, decodeJson, encodeJson, FrameKind, type ChannelEnd, type JsonMessage } from '../../protocol'
import type { RendezvousServer } from '../../server'
import { forgeUnavailable, sendForged } from '../support/forge'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

const plugins = (punchTimeoutMs = 10_000) => [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: 300, punchTimeoutMs, relay: false } },
  { resolve: 'rsa', options: {} },
]
const endpointOf = (client: TestClient): Endpoint => ({
  address: '127.0.0.1',
  port: client.client.container.cradle.transports.primary().local().port,
})

/** A socket that records what reaches it. */
async function listener(host = '127.0.0.1'): Promise<{ endpoint: Endpoint; received: Buffer[]; socket: dgram.Socket }> {
  const socket = dgram.createSocket('udp4')
  const received: Buffer[] = []
  socket.on('message', (bytes) => received.push(bytes))
  await new Promise<void>((resolve) => socket.bind(0, host, resolve))
  return { endpoint: { address: host, port: socket.address().port }, received, socket }
}

/** Registers `name` from a raw socket that then never answers a punch: a peer that lists whatever candidates it likes. */
async function silentPeer(server: Endpoint, name: string, key: string, local: Endpoint[]): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  let channel: ChannelEnd | undefined
  const replies: JsonMessage[] = []
  let wake: (() => void) | undefined
  socket.on('message', (bytes) => {
    const outer = decodeFrame(bytes)
    const frame = outer?.kind === FrameKind.Channel ? channel?.open(outer.body) : outer
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    if (json) replies.push(json)
    wake?.()
  })
  let rids = 0
  const request = async (message: { t: string; [field: string]: unknown }) => {
    const rid = (++rids).toString(16)
    const frame = encodeJson(FrameKind.Server, { ...message, rid } as JsonMessage)
    // The proof goes sealed under the channel its challenge set up, as a client sends it.
    socket.send(message.t === 'prove' && channel ? channel.seal(frame) : frame, server.port, server.address)
    for (let i = 0; i < 100; i++) {
      const reply = replies.find((r) => r.rid === rid)
      if (reply) return reply
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20)
        wake = () => (clearTimeout(timer), resolve())
      })
    }
    throw new Error(`no answer to ${message.t}`)
  }
  const reply = await admit(request, { name, key, local }, (c) => (channel = c))
  expect(reply.t).to.equal('registered')
  return socket
}

describe('paths: probes that prove themselves, and clients that cannot be aimed at a third party', function () {
  this.timeout(30_000)
  after(cleanupTemp)
  let server: RendezvousServer
  const cleanups: Array<() => unknown> = []
  beforeEach(async () => {
    server = await startServer()
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    await server.close()
  })

  async function pair(): Promise<{ alice: TestClient; bob: TestClient; fromBob: Buffer[] }> {
    const address = `127.0.0.1:${server.address().port}`
    const alice = makeClient('alice', address, { plugins: plugins() })
    const bob = makeClient('bob', address, { plugins: plugins() })
    cleanups.push(
      () => alice.client.stop(),
      () => bob.client.stop(),
    )
    const fromBob: Buffer[] = []
    alice.client.hooks.receive.tap({ name: 'sniffer', stage: -1000 }, (datagram) => {
      if (datagram.frame?.kind === FrameKind.Probe && datagram.from.port === endpointOf(bob).port)
        fromBob.push(Buffer.from(datagram.bytes))
      return undefined
    })
    await Promise.all([alice.client.start(), bob.client.start()])
    expect(await alice.client.connect('bob')).to.equal('direct')
    await alice.client.send('bob', 'path open')
    await bob.message('path open')
    return { alice, bob, fromBob }
  }

  it('a sniffed probe replayed from a third socket, and probes with a wrong MAC, change nothing and get no answer', async () => {
    const { alice, bob, fromBob } = await pair()
    expect(fromBob.length, 'probes sniffed').to.be.above(0)
    expect(
      fromBob.some((bytes) => bytes.includes(Buffer.from('token'))),
      'no token in clear',
    ).to.equal(false)
    const attacker = await listener()
    cleanups.push(() => attacker.socket.close())
    const dropped = alice.client.stats.dropped
    const wrong = (t: 'punch' | 'keepalive' | 'bye') =>
      encodeJson(FrameKind.Probe, { ...makeProbe('ab'.repeat(16), t, 'bob', 'alice', 1e9) })
    const send = (bytes: Buffer, to: Endpoint) =>
      new Promise<void>((resolve) => attacker.socket.send(bytes, to.port, to.address, () => resolve()))
    // From the attacker's own socket: every sniffed probe again, and a keepalive and bye of its own making.
    const replayed = [...fromBob] // bob's keepalives go on arriving meanwhile
    for (const bytes of [...replayed, wrong('keepalive'), wrong('bye')]) await send(bytes, endpointOf(alice))
    // And a bye with a wrong MAC forged from bob's own endpoint, where a path change would count.
    const forged = forgeUnavailable() === undefined
    if (forged) await sendForged(endpointOf(bob), endpointOf(alice), wrong('bye'))
    await alice.client.send('bob', 'the path did not move')
    await bob.message('the path did not move')
    await bob.client.send('alice', 'nor close')
    await alice.message('nor close')
    expect(attacker.received, 'datagrams alice sent the attacker').to.have.length(0)
    expect(alice.client.stats.dropped - dropped, 'the replays and forgeries, each dropped and counted').to.be.at.least(
      replayed.length + 2 + (forged ? 1 : 0),
    )
    expect(alice.connected.filter((c) => c.peer === 'bob')).to.have.length(1) // no second path event
  })

  it('8 local candidates at a victim: only own-subnet ones, a few, within the budget of an address that never answered', async function () {
    const own = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)
    if (!own) return this.skip()
    // Five ports of a victim in our own subnet, and three on loopback (not a subnet of an interface: never punched).
    const victims = await Promise.all([
      ...Array.from({ length: 5 }, () => listener(own.address)),
      ...Array.from({ length: 3 }, () => listener()),
    ])
    for (const v of victims) cleanups.push(() => v.socket.close())
    const candidates = victims.map((v) => v.endpoint)
    const mallory = await silentPeer(server.address(), 'mallory', publicPem('carol'), candidates)
    cleanups.push(() => mallory.close())
    const alice = makeClient('alice', `127.0.0.1:${server.address().port}`, { plugins: plugins(3_000) })
    const bob = makeClient('bob', `127.0.0.1:${server.address().port}`, { plugins: plugins() })
    cleanups.push(
      () => alice.client.stop(),
      () => bob.client.stop(),
    )
    await Promise.all([alice.client.start(), bob.client.start()])
    const started = Date.now()
    await alice.client.connect('mallory').catch(() => undefined) // no path: the attempt runs to its end
    const received = victims.flatMap((v) => v.received)
    const bytes = received.reduce((sum, b) => sum + b.length, 0)
    const ports = victims.filter((v) => v.received.length > 0).length
    process.stdout.write(
      `      8 candidates at a victim, one ${Date.now() - started} ms attempt: ${received.length} datagrams (${bytes} bytes) to ${ports} of its ports\n`,
    )
    // At most the budget of an address that never answered (24 punches per 10 s), shared by every candidate on it, on
    // at most MAX_LOCAL_CANDIDATES ports; none to loopback.
    expect(received.length).to.be.at.most(24)
    expect(ports).to.be.at.most(4)
    expect(victims.slice(5).flatMap((v) => v.received)).to.have.length(0)
    // alice's own conversations go on.
    await alice.client.send('bob', 'after the attempt')
    await bob.message('after the attempt')
  })
})
