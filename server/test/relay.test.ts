// NAT detection on the second port, and the relay: consent from both peers, sealed kinds only, the sender named by the server, limits.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import { createLogger } from '../../core/log'
import type { Endpoint } from '../../core/types'
import { decodeFrame, decodeJson, encodeFrame, encodeJson, FrameKind, type JsonMessage } from '../../core/wire'
import { admit, publicPem } from '../../core/test/support'
import { RendezvousServer } from '../index'
import { decodeRelay, encodeRelay, MAPPING_PAD, MAX_RELAY_NAME_BYTES, type ChannelEnd } from '../../protocol'

const WAIT_MS = 1000

/** The requests a client sends in clear: the registration's steps and NAT detection. */
const CLEAR = new Set(['hello', 'register', 'mapping'])

/** A UDP socket on 127.0.0.1 that keeps every frame it receives, opening those sealed under its channel once registered. */
class Peer {
  readonly frames: Array<{ kind: number; body: Buffer }> = []
  private readonly socket = dgram.createSocket('udp4')
  private rids = 0
  channel?: ChannelEnd

  private constructor() {
    this.socket.on('message', (bytes) => {
      const frame = decodeFrame(bytes)
      const inner = frame?.kind === FrameKind.Channel ? this.channel?.open(frame.body) : frame
      if (inner) this.frames.push({ kind: inner.kind, body: Buffer.from(inner.body) })
    })
  }

  static async open(): Promise<Peer> {
    const peer = new Peer()
    await new Promise<void>((resolve) => peer.socket.bind(0, '127.0.0.1', resolve))
    return peer
  }

  get endpoint(): Endpoint {
    const { address, port } = this.socket.address()
    return { address, port }
  }

  /** Sends a frame, sealed under the channel once registered unless it is one that goes in clear. */
  send(bytes: Buffer, to: Endpoint): Promise<void> {
    const frame = decodeFrame(bytes)
    const clear = frame?.kind === FrameKind.Server && CLEAR.has(String(decodeJson(frame.body)?.t))
    const out = this.channel && !clear ? this.channel.seal(bytes) : bytes
    return new Promise((resolve, reject) =>
      this.socket.send(out, to.port, to.address, (e) => (e ? reject(e) : resolve())),
    )
  }

  /** The first JSON server message matching, received before or within WAIT_MS after the call. */
  async json(match: (m: JsonMessage) => boolean): Promise<JsonMessage> {
    return this.until(
      () =>
        this.frames
          .filter((f) => f.kind === FrameKind.Server)
          .map((f) => decodeJson(f.body)!)
          .find(match),
      'a server message',
    )
  }

  async until<T>(find: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + WAIT_MS
    for (let i = 0; i < 100; i++) {
      const found = find()
      if (found !== undefined) return found
      if (Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    throw new Error(`no ${what} within ${WAIT_MS} ms`)
  }

  async request(message: JsonMessage, to: Endpoint): Promise<JsonMessage> {
    const rid = (++this.rids).toString(16) + 'a'
    await this.send(encodeJson(FrameKind.Server, { ...message, rid }), to)
    return this.json((m) => m.rid === rid)
  }

  relayed(): Array<{ name: string; frame: Buffer }> {
    return this.frames.filter((f) => f.kind === FrameKind.Relay).map((f) => decodeRelay(f.body)!)
  }

  close(): void {
    this.socket.close()
  }
}

describe('rendezvous server: NAT detection and relay', function () {
  const servers: RendezvousServer[] = []
  const peers: Peer[] = []
  const start = async (options: { relay?: boolean; relayLimits?: { framesPerSec: number; bytesPerSec: number } }) => {
    const server = new RendezvousServer({ host: '127.0.0.1', port: 0, ...options, logger: createLogger('silent') })
    servers.push(server)
    return { server, at: await server.listen() }
  }
  const registered = async (at: Endpoint, name: 'alice' | 'bob' | 'carol') => {
    const peer = await Peer.open()
    peers.push(peer)
    const reply = await admit(
      (message) => peer.request(message, at),
      { name, key: publicPem(name) },
      (channel) => (peer.channel = channel),
    )
    expect(reply.t).to.equal('registered')
    return { peer, reply }
  }
  const sealed = (kind: number, text: string) => encodeFrame(kind as FrameKind, Buffer.from(text))
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.close()
    for (const server of servers.splice(0)) await server.close()
  })

  it('answers mapping on its second port with the endpoint it sees, and names that port at registration', async () => {
    const { server, at } = await start({})
    const { peer, reply } = await registered(at, 'alice')
    expect(reply.altPort).to.equal(server.altAddress()!.port)
    expect(reply.relay).to.equal(false)
    const alt = { address: at.address, port: reply.altPort as number }
    const mapped = await peer.request({ t: 'mapping', pad: MAPPING_PAD }, alt)
    expect(mapped).to.deep.include({ t: 'mapped', public: peer.endpoint })
    expect(server.stats.mappings).to.equal(1)
    // An unpadded request would get a longer answer than it cost: refused, so the port cannot amplify a spoofed source.
    await peer.send(encodeJson(FrameKind.Server, { t: 'mapping', rid: 'b' }), alt)
    await peer.until(() => (server.stats.malformed === 1 ? true : undefined), 'the refusal of an unpadded mapping')
    expect(server.stats.mappings).to.equal(1)
  })

  it('relays only after both peers asked, names the sender itself, and carries HANDSHAKE and DATA frames only', async () => {
    const { server, at } = await start({ relay: true })
    const { peer: alice } = await registered(at, 'alice')
    const { peer: bob } = await registered(at, 'bob')

    expect(await alice.request({ t: 'relay', to: 'bob' }, at)).to.deep.include({
      t: 'relay',
      peer: 'bob',
      ready: false,
    })
    await bob.json((m) => m.t === 'relay' && m.peer === 'alice' && m.ready === false)
    await alice.send(encodeRelay('bob', sealed(FrameKind.Data, 'too early')), at)
    await alice.until(
      () => (server.stats.relayRefused === 1 ? true : undefined),
      'the refusal of a frame before consent',
    )

    expect(await bob.request({ t: 'relay', to: 'alice' }, at)).to.deep.include({
      t: 'relay',
      peer: 'alice',
      ready: true,
    })
    await alice.json((m) => m.t === 'relay' && m.peer === 'bob' && m.ready === true)
    await alice.send(encodeRelay('bob', sealed(FrameKind.Handshake, 'hello')), at)
    await bob.send(encodeRelay('alice', sealed(FrameKind.Data, 'sealed')), at)
    const [toBob] = await bob.until(() => (bob.relayed().length ? bob.relayed() : undefined), 'a relayed frame at bob')
    expect(toBob.name).to.equal('alice')
    expect(toBob.frame.equals(sealed(FrameKind.Handshake, 'hello'))).to.equal(true)
    const [toAlice] = await alice.until(
      () => (alice.relayed().length ? alice.relayed() : undefined),
      'a relayed frame at alice',
    )
    expect(toAlice).to.deep.include({ name: 'bob' })

    // A SERVER or PROBE frame inside a RELAY is refused: the relay carries only what is sealed end to end.
    const body = Buffer.concat([Buffer.of(3), Buffer.from('bob'), encodeJson(FrameKind.Server, { t: 'intro' })])
    await alice.send(encodeFrame(FrameKind.Relay, body), at)
    await alice.until(() => (server.stats.relayRefused === 2 ? true : undefined), 'the refusal of a SERVER frame')
    expect(server.stats.relayed).to.equal(2)
  })

  it('does not relay to a peer that did not ask, nor for an unregistered sender', async () => {
    const { server, at } = await start({ relay: true })
    const { peer: alice } = await registered(at, 'alice')
    await registered(at, 'bob')
    const { peer: carol } = await registered(at, 'carol')
    await alice.request({ t: 'relay', to: 'bob' }, at)
    await carol.request({ t: 'relay', to: 'alice' }, at)
    // alice asked for bob, not carol: carol's frames to alice are refused although carol asked.
    await carol.send(encodeRelay('alice', sealed(FrameKind.Data, 'x')), at)
    const stranger = await Peer.open()
    peers.push(stranger)
    await stranger.send(encodeRelay('alice', sealed(FrameKind.Data, 'x')), at)
    await alice.until(() => (server.stats.relayRefused === 2 ? true : undefined), 'both refusals')
    expect(alice.relayed()).to.deep.equal([])
  })

  it('tells those relayed with a peer that it left: its own bye does not cross the relay', async () => {
    const { at } = await start({ relay: true })
    const { peer: alice } = await registered(at, 'alice')
    const { peer: bob } = await registered(at, 'bob')
    const { peer: carol } = await registered(at, 'carol')
    await alice.request({ t: 'relay', to: 'bob' }, at)
    await bob.request({ t: 'relay', to: 'alice' }, at)
    await carol.request({ t: 'relay', to: 'alice' }, at) // carol asked for alice, not bob
    await bob.send(encodeJson(FrameKind.Server, { t: 'bye' }), at)
    expect(await alice.json((m) => m.t === 'left')).to.deep.equal({ t: 'left', peer: 'bob' })
    // alice leaves too: carol, who asked for alice, hears it; nobody told carol of bob.
    await alice.send(encodeJson(FrameKind.Server, { t: 'bye' }), at)
    expect(await carol.json((m) => m.t === 'left')).to.deep.equal({ t: 'left', peer: 'alice' })
    expect(
      carol.frames
        .filter((f) => f.kind === FrameKind.Server)
        .map((f) => decodeJson(f.body))
        .filter((m) => m?.t === 'left'),
    ).to.have.length(1)
  })

  it('limits each sender to its rate', async () => {
    const { server, at } = await start({ relay: true, relayLimits: { framesPerSec: 5, bytesPerSec: 100_000 } })
    const { peer: alice } = await registered(at, 'alice')
    const { peer: bob } = await registered(at, 'bob')
    await alice.request({ t: 'relay', to: 'bob' }, at)
    await bob.request({ t: 'relay', to: 'alice' }, at)
    for (let i = 0; i < 30; i++) await alice.send(encodeRelay('bob', sealed(FrameKind.Data, `#${i}`)), at)
    await alice.until(
      () => (server.stats.relayed + server.stats.relayRefused === 30 ? true : undefined),
      'all 30 frames handled',
    )
    // The bucket holds two seconds' worth (10); the burst took well under a second, so at most one more refilled.
    expect(server.stats.relayed).to.be.within(10, 11)
  })

  it('answers a relay request with relay_disabled unless the relay is on', async () => {
    const { at } = await start({})
    const { peer: alice } = await registered(at, 'alice')
    await registered(at, 'bob')
    expect(await alice.request({ t: 'relay', to: 'bob' }, at)).to.deep.include({ t: 'error', code: 'relay_disabled' })
  })

  it('encodes and decodes RELAY bodies, refusing empty or long names and non-sealed kinds', () => {
    const frame = sealed(FrameKind.Data, 'payload')
    const decoded = decodeRelay(decodeFrame(encodeRelay('zoë', frame))!.body)
    expect(decoded?.name).to.equal('zoë')
    expect(decoded?.frame.equals(frame)).to.equal(true)
    expect(() => encodeRelay('', frame)).to.throw()
    expect(() => encodeRelay('x'.repeat(MAX_RELAY_NAME_BYTES + 1), frame)).to.throw()
    expect(decodeRelay(Buffer.concat([Buffer.of(1), Buffer.from('a'), sealed(FrameKind.Probe, '{}')]))).to.equal(
      undefined,
    )
    expect(decodeRelay(Buffer.of(0))).to.equal(undefined)
    expect(decodeRelay(Buffer.alloc(0))).to.equal(undefined)
  })
})
