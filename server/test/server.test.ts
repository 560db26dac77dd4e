// The live rendezvous server on 127.0.0.1 with real UDP clients: registration, lists, introductions, expiry, junk.
import { expect } from 'chai'
import { sign } from 'node:crypto'
import * as dgram from 'node:dgram'
import { createLogger } from '../../core/log'
import type { Endpoint } from '../../core/types'
import {
  decodeFrame,
  decodeJson,
  encodeFrame,
  encodeJson,
  frameHeader,
  FrameKind,
  MAX_DATAGRAM_BYTES,
  type JsonMessage,
} from '../../core/wire'
import { admit, challengeTranscript, privatePemFor, publicPem, tempDir } from '../../core/test/support'
import { DEFAULT_LIMITS, RendezvousServer, type ServerOptions } from '../index'
import {
  ChannelEnd,
  ephemeralKey,
  HELLO_PAD,
  MAX_KEY_CHARS,
  NAMES_PER_REPLY,
  parseServerMessage,
  PING_PAD,
  PSS,
  registrationProof,
} from '../../protocol'

const REPLY_MS = 2000
const KEYS = { alice: publicPem('alice'), bob: publicPem('bob'), carol: publicPem('carol') }

/** The requests a client sends in clear: the registration's steps and NAT detection. */
const CLEAR = new Set(['hello', 'register', 'mapping'])

/** A UDP client socket on 127.0.0.1 that queues every server message it receives, sealed ones opened under its channel. */
class Client {
  readonly received: JsonMessage[] = []
  private readonly socket = dgram.createSocket('udp4')
  private waiter?: () => void
  private rids = 0
  channel?: ChannelEnd

  private constructor(private readonly server: Endpoint) {
    this.socket.on('message', (bytes) => {
      const outer = decodeFrame(bytes)
      const frame = outer?.kind === FrameKind.Channel ? this.channel?.open(outer.body) : outer
      const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
      this.received.push(json ?? { t: '<undecodable>' })
      this.waiter?.()
    })
  }

  static async open(server: Endpoint, host = '127.0.0.1'): Promise<Client> {
    const client = new Client(server)
    await new Promise<void>((resolve) => client.socket.bind(0, host, resolve))
    return client
  }

  get endpoint(): Endpoint {
    const { address, port } = this.socket.address()
    return { address, port }
  }

  rid(): string {
    return (++this.rids).toString(16)
  }

  sendRaw(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, this.server.port, this.server.address, (e) => (e ? reject(e) : resolve())),
    )
  }

  /** Sends a message, sealed under the channel once registered unless it is one that goes in clear. */
  send(message: JsonMessage): Promise<void> {
    const frame = encodeJson(FrameKind.Server, message)
    return this.sendRaw(this.channel && !CLEAR.has(message.t) ? this.channel.seal(frame) : frame)
  }

  /** The next message received (in order), or a failure after REPLY_MS. */
  async next(): Promise<JsonMessage> {
    const deadline = Date.now() + REPLY_MS
    while (this.received.length === 0) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no reply within ${REPLY_MS} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.waiter = undefined
    }
    return this.received.shift()!
  }

  /** Sends a request with a fresh rid and returns the next message, which must be its reply. */
  async request(message: Omit<JsonMessage, 'rid'> & { t: string }): Promise<JsonMessage> {
    const rid = this.rid()
    await this.send({ ...message, rid })
    const reply = await this.next()
    expect(reply.rid, `reply to ${message.t}`).to.equal(rid)
    // Every reply must pass the client's own check of server messages.
    expect(parseServerMessage(reply), JSON.stringify(reply)).to.not.equal(undefined)
    return reply
  }

  /** A sealed ping from an endpoint the server forgot: it cannot open it, so it answers `not_registered` in clear, without rid. */
  async pingForgotten(): Promise<JsonMessage> {
    await this.send({ t: 'ping', rid: this.rid(), pad: PING_PAD })
    return this.next()
  }

  register(name: string, key: string, local: Endpoint[] = []): Promise<JsonMessage> {
    return admit(
      (message) => this.request(message),
      { name, key, local },
      (channel) => (this.channel = channel),
    )
  }

  async peers(): Promise<string[]> {
    const reply = await this.request({ t: 'list' })
    expect(reply.t).to.equal('peers')
    return reply.peers as string[]
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}

describe('server RendezvousServer (live UDP)', function () {
  let server: RendezvousServer
  let address: Endpoint
  const clients: Client[] = []

  async function start(options: ServerOptions = {}): Promise<void> {
    server = new RendezvousServer({ host: '127.0.0.1', port: 0, logger: createLogger('silent'), ...options })
    address = await server.listen()
  }

  async function client(): Promise<Client> {
    const c = await Client.open(address)
    clients.push(c)
    return c
  }

  async function registered(name: keyof typeof KEYS, local: Endpoint[] = []): Promise<Client> {
    const c = await client()
    expect((await c.register(name, KEYS[name], local)).t).to.equal('registered')
    return c
  }

  beforeEach(() => start())

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await server.close()
  })

  it('listens on the requested host with a system-chosen port', () => {
    expect(address.address).to.equal('127.0.0.1')
    expect(address.port).to.be.greaterThan(0)
  })

  it('registers a client and tells it the endpoint it is seen from and the ttl', async () => {
    const alice = await client()
    const reply = await alice.register('alice', KEYS.alice)
    expect(reply).to.deep.include({ t: 'registered', name: 'alice', public: alice.endpoint, ttlMs: 45_000 })
    expect(server.online).to.equal(1)
    expect(server.stats.registrations).to.equal(1)
  })

  it('says in the cookie where it sees the client and where its second port is, when the hello is long enough to carry them', async () => {
    const alice = await client()
    const cookie = await alice.request({ t: 'hello', pad: HELLO_PAD })
    expect(cookie).to.deep.include({ t: 'cookie', public: alice.endpoint, altPort: server.altAddress()?.port })
    // The longest cookie, address and port still fit: no reply to an unverified source is larger than its request.
    const rid = 'f'.repeat(32)
    const longest = {
      t: 'cookie',
      rid,
      cookie: 'c'.repeat(64),
      public: { address: '255.255.255.255', port: 65535 },
      altPort: 65535,
    }
    expect(encodeJson(FrameKind.Server, longest).length).to.be.at.most(
      encodeJson(FrameKind.Server, { t: 'hello', rid, pad: HELLO_PAD }).length,
    )
    // An older client's shorter hello gets the cookie alone.
    const short = await alice.request({ t: 'hello', pad: 'x'.repeat(64) })
    expect(short.t).to.equal('cookie')
    expect(short).to.not.have.any.keys('public', 'altPort')
  })

  it('answers a resent register with the same challenge, admits a resent proof again, and no other proof', async () => {
    const alice = await client()
    const cookie = await alice.request({ t: 'hello', pad: HELLO_PAD })
    const eph = ephemeralKey()
    const challenge = await alice.request({
      t: 'register',
      name: 'alice',
      key: KEYS.alice,
      cookie: cookie.cookie,
      eph: eph.public,
    })
    const transcript = challengeTranscript(challenge, { name: 'alice', key: KEYS.alice }, eph.public)
    alice.channel = ChannelEnd.derive('client', eph, transcript.serverEph, transcript)
    const proof = registrationProof(transcript)
    const sig = sign('sha256', proof, { key: privatePemFor(KEYS.alice), ...PSS }).toString('base64')
    const again = await alice.request({
      t: 'register',
      name: 'alice',
      key: KEYS.alice,
      cookie: cookie.cookie,
      eph: eph.public,
    })
    expect(again.nonce, 'a resent register gets the same challenge').to.equal(challenge.nonce)
    expect((await alice.request({ t: 'prove', sig, local: [] })).t).to.equal('registered')
    expect((await alice.request({ t: 'prove', sig, local: [] })).t).to.equal('registered') // the client's retransmission
    const other = sign('sha256', proof, { key: privatePemFor(KEYS.alice), ...PSS }).toString('base64') // PSS: a new salt
    expect(other).to.not.equal(sig)
    expect(await alice.request({ t: 'prove', sig: other, local: [] })).to.deep.include({
      t: 'error',
      code: 'bad_request',
    })
    expect(server.online).to.equal(1)
  })

  /** hello and register as a client does; the channel the challenge sets up, and the proof to send under it. */
  async function challenged(c: Client, name: keyof typeof KEYS) {
    const cookie = await c.request({ t: 'hello', pad: HELLO_PAD })
    const eph = ephemeralKey()
    const challenge = await c.request({ t: 'register', name, key: KEYS[name], cookie: cookie.cookie, eph: eph.public })
    expect(challenge.t).to.equal('challenge')
    const transcript = challengeTranscript(challenge, { name, key: KEYS[name] }, eph.public)
    const sig = sign('sha256', registrationProof(transcript), { key: privatePemFor(KEYS[name]), ...PSS })
    return {
      channel: ChannelEnd.derive('client', eph, transcript.serverEph, transcript)!,
      transcript,
      prove: { t: 'prove', sig: sig.toString('base64'), local: [{ address: '10.1.2.3', port: 4567 }] },
    }
  }

  it('refuses a proof in clear (it would carry the LAN endpoints), and admits it sealed', async () => {
    const alice = await client()
    const { channel, prove } = await challenged(alice, 'alice')
    const rid = alice.rid()
    const clear = encodeJson(FrameKind.Server, { ...prove, rid })
    await alice.sendRaw(clear)
    const refused = await alice.next()
    expect(refused).to.deep.include({ t: 'error', rid, code: 'bad_request' })
    expect(encodeJson(FrameKind.Server, refused).length, 'no larger than the clear prove').to.be.at.most(clear.length)
    expect(server.online).to.equal(0)
    alice.channel = channel
    expect((await alice.request(prove)).t).to.equal('registered')
    const bob = await registered('bob')
    const intro = await bob.request({ t: 'connect', to: 'alice' })
    expect(intro.peer, "the sealed proof's LAN endpoints reach the peers").to.deep.include({
      local: [{ address: '10.1.2.3', port: 4567 }],
    })
  })

  it('drops and counts a proof sealed under other keys, and registers nothing', async () => {
    const mallory = await client()
    const { transcript, prove } = await challenged(mallory, 'alice')
    // The same transcript but another ephemeral key than the one registered: keys the server did not agree to.
    const forged = ChannelEnd.derive('client', ephemeralKey(), transcript.serverEph, transcript)!
    const forgedBefore = server.stats.forged
    await mallory.sendRaw(forged.seal(encodeJson(FrameKind.Server, { ...prove, rid: mallory.rid() })))
    // Datagrams on loopback from one socket arrive in order: once the hello after it is answered, the forgery was handled.
    expect((await mallory.request({ t: 'hello', pad: HELLO_PAD })).t).to.equal('cookie')
    expect(server.stats.forged).to.equal(forgedBefore + 1)
    expect(server.online).to.equal(0)
  })

  it('answers a ping with the public endpoint', async () => {
    const alice = await registered('alice')
    expect(await alice.request({ t: 'ping', pad: PING_PAD })).to.deep.include({ t: 'pong', public: alice.endpoint })
  })

  it('lists the other names online, sorted, not the asker', async () => {
    const carol = await registered('carol')
    const alice = await registered('alice')
    const bob = await registered('bob')
    expect(await alice.peers()).to.deep.equal(['bob', 'carol'])
    expect(await bob.peers()).to.deep.equal(['alice', 'carol'])
    expect(await carol.peers()).to.deep.equal(['alice', 'bob'])
  })

  it('pages a long list to its end, and finds a name by search however many names sort before it', async () => {
    // Ninety registrations from one address: over the default registration rate and quota, on purpose here.
    await server.close()
    await start({
      limits: { ...DEFAULT_LIMITS, registrationsPerSecond: 1000, registrationBurst: 1000 },
      quotas: { perAddress: 1000, perPrefix: 1000 },
    })
    const asker = await registered('carol')
    // A flooder's names sort before everyone's; "alice" comes after them.
    for (let i = 0; i < 2 * NAMES_PER_REPLY + 5; i++) {
      expect((await (await client()).register(`aaa${String(i).padStart(2, '0')}`, KEYS.bob)).t).to.equal('registered')
    }
    await registered('alice')
    const first = await asker.request({ t: 'list' })
    expect(first.peers).to.have.length(NAMES_PER_REPLY)
    expect(first.more).to.equal(true)
    expect((first.peers as string[])[0]).to.equal('aaa00')
    const all: string[] = []
    let after: string | undefined
    for (let page = 0; page < 10; page++) {
      const reply = await asker.request({ t: 'list', ...(after ? { after } : {}) })
      all.push(...(reply.peers as string[]))
      after = all[all.length - 1]
      if (!reply.more) break
    }
    expect(all).to.have.length(2 * NAMES_PER_REPLY + 6)
    expect(all[all.length - 1]).to.equal('alice')
    expect(new Set(all).size, 'no name twice').to.equal(all.length)
    expect(await asker.request({ t: 'list', query: 'ALI' })).to.deep.include({ peers: ['alice'], more: false })
  })

  it('holds at most so many registrations per address and per /24, with the reason; a refresh does not count twice', async () => {
    await server.close()
    await start({
      limits: { ...DEFAULT_LIMITS, registrationsPerSecond: 1000, registrationBurst: 1000 },
      quotas: { perAddress: 2, perPrefix: 3 },
    })
    const first = await registered('alice')
    await registered('bob')
    const third = await (await client()).register('carol', KEYS.carol)
    expect(third).to.deep.include({ t: 'error', code: 'over_quota' })
    expect(third.message).to.include('from your address')
    expect((await first.register('alice', KEYS.alice)).t, 'a refresh').to.equal('registered')
    // Another address of the same /24: one more fits the prefix's quota of 3, then none.
    const other = await Client.open(address, '127.0.0.2')
    clients.push(other)
    expect((await other.register('carol', KEYS.carol)).t).to.equal('registered')
    const fourth = await Client.open(address, '127.0.0.2')
    clients.push(fourth)
    const refused = await fourth.register('dave', KEYS.carol)
    expect(refused).to.deep.include({ t: 'error', code: 'over_quota' })
    expect(refused.message).to.include('127.0.0.0/24')
  })

  it('makes room when full by dropping the registration idle longest, not by refusing, and tells it (sealed `closing`)', async () => {
    await server.close()
    await start({ maxRegistrations: 2 })
    const alice = await registered('alice')
    const bob = await registered('bob')
    await alice.request({ t: 'ping', pad: PING_PAD }) // alice is active; bob idles
    await registered('carol')
    expect(server.online).to.equal(2)
    // Told at once, under its channel, so its client registers again instead of waiting for a keepalive to fail.
    expect(await bob.next()).to.deep.equal({ t: 'closing', reason: 'evicted' })
    expect(alice.received, 'only the evicted registration is told').to.deep.equal([])
    expect(await alice.peers()).to.deep.equal(['carol'])
    expect((await bob.pingForgotten()).code).to.equal('not_registered')
  })

  it("introduces two clients to each other with the same token, each side's key and endpoints", async () => {
    const aliceLocal = [{ address: '192.168.1.10', port: 40000 }]
    const bobLocal = [
      { address: '10.0.0.7', port: 50000 },
      { address: '172.16.0.2', port: 50001 },
    ]
    const alice = await registered('alice', aliceLocal)
    const bob = await registered('bob', bobLocal)

    const toAlice = await alice.request({ t: 'connect', to: 'bob' })
    const toBob = await bob.next()

    expect(toAlice.t).to.equal('intro')
    expect(toAlice.peer).to.deep.equal({
      name: 'bob',
      key: KEYS.bob,
      public: bob.endpoint,
      local: bobLocal,
      nat: 'unknown',
    })
    expect(toBob).to.deep.include({ t: 'intro' })
    expect(toBob.rid).to.equal(undefined)
    expect(toBob.peer).to.deep.equal({
      name: 'alice',
      key: KEYS.alice,
      public: alice.endpoint,
      local: aliceLocal,
      nat: 'unknown',
    })
    expect(parseServerMessage(toBob)).to.not.equal(undefined)
    expect(toAlice.token).to.match(/^[0-9a-f]{32}$/)
    expect(toBob.token).to.equal(toAlice.token)
    expect(server.stats.introductions).to.equal(1)

    // A second introduction gets a fresh token.
    const again = await alice.request({ t: 'connect', to: 'bob' })
    expect((await bob.next()).token).to.equal(again.token)
    expect(again.token).to.not.equal(toAlice.token)
  })

  it('introduces a client that asked for an offline name to it as soon as it registers, once', async () => {
    const alice = await registered('alice')
    expect(await alice.request({ t: 'connect', to: 'bob' })).to.deep.include({ t: 'error', code: 'unknown_peer' })
    const bob = await registered('bob')
    const [toAlice, toBob] = [await alice.next(), await bob.next()]
    expect(toAlice).to.deep.include({ t: 'intro' })
    expect(toAlice.rid, 'unasked, as the intro the peer of a connect gets').to.equal(undefined)
    expect(toAlice.peer).to.deep.include({ name: 'bob', public: bob.endpoint })
    expect(toBob.peer).to.deep.include({ name: 'alice', public: alice.endpoint })
    expect(toBob.token).to.equal(toAlice.token)
    // The watch is used up: bob registering again (a refresh) introduces nobody.
    expect((await bob.register('bob', KEYS.bob)).t).to.equal('registered')
    expect(server.stats.introductions).to.equal(1)
  })

  it('introduces a restarted client at its new endpoint', async () => {
    const bob = await registered('bob')
    const oldAlice = await registered('alice')
    const newAlice = await client()
    expect((await newAlice.register('alice', KEYS.alice)).public).to.deep.equal(newAlice.endpoint)
    const intro = await bob.request({ t: 'connect', to: 'alice' })
    expect((intro.peer as { public: Endpoint }).public).to.deep.equal(newAlice.endpoint)
    expect((await newAlice.next()).t).to.equal('intro')
    // The old socket's endpoint is no longer registered.
    expect(await oldAlice.pingForgotten()).to.deep.equal({
      t: 'error',
      code: 'not_registered',
      message: 'register first',
    })
  })

  it('answers connect to a name that is not online, or to oneself, with unknown_peer', async () => {
    const alice = await registered('alice')
    expect(await alice.request({ t: 'connect', to: 'nobody' })).to.deep.include({
      t: 'error',
      code: 'unknown_peer',
      message: 'nobody is not online',
    })
    expect(await alice.request({ t: 'connect', to: 'alice' })).to.deep.include({ t: 'error', code: 'unknown_peer' })
    expect(server.stats.introductions).to.equal(0)
  })

  it('answers requests from an unregistered endpoint with not_registered, and ignores its bye', async () => {
    await registered('bob')
    const stranger = await client()
    for (const message of [
      { t: 'ping', pad: PING_PAD },
      { t: 'list', pad: PING_PAD },
      { t: 'connect', to: 'bob', pad: PING_PAD },
    ]) {
      expect(await stranger.request(message), message.t).to.deep.include({
        t: 'error',
        code: 'not_registered',
        message: 'register first',
      })
    }
    // To an unverified source the server never sends more than it got: a short request gets no answer at all.
    await stranger.send({ t: 'list', rid: 'a' })
    await stranger.send({ t: 'bye' })
    // The next message is the ping's reply: nothing was sent for the short list nor for the bye.
    expect(await stranger.request({ t: 'ping', pad: PING_PAD })).to.deep.include({ code: 'not_registered' })
    expect(server.stats.unregistered).to.equal(6)
    expect(server.stats.unsent).to.equal(1)
  })

  it('forgets a client that says bye', async () => {
    const alice = await registered('alice')
    const bob = await registered('bob')
    await alice.send({ t: 'bye' })
    expect(await alice.pingForgotten()).to.deep.equal({ t: 'error', code: 'not_registered', message: 'register first' })
    expect(await bob.peers()).to.deep.equal([])
    expect(await bob.request({ t: 'connect', to: 'alice' })).to.deep.include({ code: 'unknown_peer' })
  })

  it('refuses a key that is weak, has exponent 3, or is not a key, with bad_key', async () => {
    const mallory = await client()
    const cases: Array<[string, string]> = [
      [publicPem('weak-1024'), 'the key must have 2048 to 8192 bits'],
      [publicPem('e3-2048'), 'the key must have public exponent 65537'],
      ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'the key is not a PEM public key'],
    ]
    for (const [key, message] of cases) {
      expect(await mallory.register('mallory', key)).to.deep.include({ t: 'error', code: 'bad_key', message })
    }
    expect(server.online).to.equal(0)
    expect(server.stats.registrations).to.equal(0)
  })

  it('refuses a name online under another key with name_taken, and the holder keeps it', async () => {
    const alice = await registered('alice')
    const impostor = await client()
    expect(await impostor.register('alice', KEYS.carol)).to.deep.include({ t: 'error', code: 'name_taken' })
    const bob = await registered('bob')
    const intro = await bob.request({ t: 'connect', to: 'alice' })
    expect(intro.peer).to.deep.include({ key: KEYS.alice, public: alice.endpoint })
    expect((await alice.next()).peer).to.deep.include({ name: 'bob' })
    // The holder can still refresh its own registration.
    expect((await alice.register('alice', KEYS.alice)).t).to.equal('registered')
  })

  it('keeps a name bound to its key after its owner leaves, across a restart of the server, until the owner releases it', async () => {
    await server.close()
    const dataDir = tempDir()
    await start({ dataDir })
    const alice = await registered('alice')
    await alice.send({ t: 'bye' })
    expect((await alice.pingForgotten()).code, 'a round trip: the bye has been handled').to.equal('not_registered')
    expect(server.online).to.equal(0)
    const squatter = await client()
    const refused = await squatter.register('alice', KEYS.carol)
    expect(refused).to.deep.include({ t: 'error', code: 'name_taken' })
    expect(refused.message).to.include('belongs to another key').and.include('released after 90 days')
    // The server restarts from its data dir: the binding is still there, and so is its key.
    const fingerprint = server.fingerprint
    await server.close()
    await start({ dataDir })
    expect(server.fingerprint).to.equal(fingerprint)
    expect(await (await client()).register('alice', KEYS.carol)).to.deep.include({ t: 'error', code: 'name_taken' })
    // The owner comes back, and gives the name up: from then on it is anyone's.
    const owner = await registered('alice')
    expect(await owner.request({ t: 'release' })).to.deep.include({ t: 'released', name: 'alice' })
    await owner.send({ t: 'bye' })
    expect((await (await client()).register('alice', KEYS.carol)).t).to.equal('registered')
  })

  it('refuses look-alikes of a bound name under another key: case, fullwidth, mathematical letters, Cyrillic а', async () => {
    await server.close()
    await start({ limits: { ...DEFAULT_LIMITS, registrationsPerSecond: 100, registrationBurst: 100 } })
    const alice = await registered('alice')
    await alice.send({ t: 'bye' })
    for (const lookalike of ['ALICE', 'аlice', 'ａｌｉｃｅ', '𝔞𝔩𝔦𝔠𝔢', 'Alice']) {
      const reply = await (await client()).register(lookalike, KEYS.carol)
      expect(reply, lookalike).to.deep.include({ t: 'error', code: 'name_taken' })
      expect(reply.message, lookalike).to.include('looks like "alice"')
    }
    // The owner's key may use any of its forms; another name is anyone's.
    expect((await (await client()).register('ALICE', KEYS.alice)).t).to.equal('registered')
    expect((await (await client()).register('alicia', KEYS.carol)).t).to.equal('registered')
  })

  it("refuses a name longer than 64 bytes of UTF-8 (the handshake's limit), with the reason", async () => {
    const reply = await (await client()).register('名'.repeat(22), KEYS.alice) // 22 characters, 66 bytes
    expect(reply).to.deep.include({
      t: 'error',
      code: 'bad_request',
      message: 'the name is 66 bytes of UTF-8; at most 64',
    })
    expect((await (await client()).register('名'.repeat(21), KEYS.alice)).t).to.equal('registered')
  })

  it('drops a registration that stops refreshing after ttlMs, and keeps one that refreshes', async () => {
    await server.close()
    await start({ ttlMs: 300 })
    const alice = await registered('alice')
    const bob = await registered('bob')
    const registeredAt = Date.now()
    expect(await alice.peers()).to.deep.equal(['bob'])
    // Alice keeps asking every 25 ms (each request refreshes her, within the rate limit); bob stays silent.
    let peers = ['bob']
    for (let i = 0; i < 200 && peers.length > 0 && Date.now() - registeredAt < 5000; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      peers = await alice.peers()
    }
    expect(peers).to.deep.equal([])
    expect(Date.now() - registeredAt).to.be.at.least(300 - 20)
    expect(await bob.pingForgotten()).to.deep.equal({ t: 'error', code: 'not_registered', message: 'register first' })
    // Offline, the name is still bob's: another key is refused, bob's own registers again.
    expect(await (await client()).register('bob', KEYS.carol)).to.deep.include({ t: 'error', code: 'name_taken' })
    expect((await bob.register('bob', KEYS.bob)).t).to.equal('registered')
  })

  it('drops malformed datagrams, counts them, and keeps serving', async () => {
    const alice = await registered('alice')
    const bob = await registered('bob')
    const validRegister = { t: 'register', rid: '1', name: 'mallory', key: KEYS.carol }
    const junk: Buffer[] = [
      Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]),
      Buffer.from([0x00]),
      Buffer.alloc(0),
      encodeJson(FrameKind.Server, { t: 'ping', rid: '2' }).fill(0x00, 0, 1), // wrong magic
      Buffer.concat([Buffer.from([0xd5, 2, FrameKind.Server]), Buffer.from('{"t":"ping","rid":"3"}')]), // wrong version
      encodeJson(FrameKind.Probe, { t: 'ping', rid: '4' }), // not a server frame
      Buffer.concat([frameHeader(FrameKind.Server), Buffer.from('{"t":"ping",')]), // bad JSON
      encodeFrame(FrameKind.Server, Buffer.from('{"rid":"5"}')), // no t
      encodeFrame(FrameKind.Server, Buffer.from('["ping"]')),
      encodeJson(FrameKind.Server, { t: 'shout', rid: '6' }), // unknown type
      encodeJson(FrameKind.Server, { t: 'ping', rid: 'not-hex' }),
      encodeJson(FrameKind.Server, { ...validRegister, name: 'bad name' }),
      encodeJson(FrameKind.Server, { t: 'prove', rid: '1', sig: 'AAAA', local: 'everywhere' }),
      encodeJson(FrameKind.Server, { ...validRegister, key: 'k'.repeat(MAX_KEY_CHARS + 1) }),
      encodeJson(FrameKind.Server, { t: 'connect', rid: '7', to: 'a b' }),
      Buffer.concat([encodeJson(FrameKind.Server, { t: 'ping', rid: '8' }), Buffer.alloc(1500 - 30, 0x20)]), // 1500 bytes
      Buffer.concat([
        frameHeader(FrameKind.Server),
        Buffer.from(JSON.stringify({ ...validRegister, key: 'k'.repeat(5000) })),
      ]),
    ]
    expect(junk[15].length).to.be.greaterThan(MAX_DATAGRAM_BYTES)
    for (const bytes of junk) await alice.sendRaw(bytes)
    // Datagrams from one socket arrive in order on loopback: the next message is the reply to this request.
    expect(await alice.peers()).to.deep.equal(['bob'])
    expect(server.stats.malformed).to.equal(junk.length)
    expect(server.online).to.equal(2)
    expect(alice.received).to.deep.equal([])

    // Other clients are served as before.
    const intro = await bob.request({ t: 'connect', to: 'alice' })
    expect(intro.t).to.equal('intro')
    expect((await alice.next()).t).to.equal('intro')
  })
})
