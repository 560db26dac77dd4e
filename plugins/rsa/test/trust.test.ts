// Trust on first use against a name squatter: keys are pinned only after a handshake, /trust pins the key the warning
// named, the pinned key coming back clears the warning, and a message queued across a restart reaches only that key.
// Real clients on loopback; the server is a liar that lets anyone take a name (a squat), as a hostile server can.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { HostileServer } from '../../../test/support/hostile-server'
import { makeClient, type TestClient } from '../../../test/support/inprocess'
import { cleanupTemp, FIXTURE_KEYS, fixtureProfile } from '../../../test/support/processes'
import { fingerprintOf as identityOfPublic, identityFromPem } from '../identity'

const fastRsa = { resolve: 'rsa', options: { handshakeTimeoutMs: 1500 } }
const plugins = [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: {} },
  fastRsa,
  { resolve: 'reliable', options: {} },
]
const fingerprint = (fixture: string) =>
  identityFromPem(fs.readFileSync(path.join(FIXTURE_KEYS, `${fixture}.pem`), 'utf8')).fingerprint
const REAL_ALICE = fingerprint('alice')
/** The squatter holds carol's key and registers as "alice". */
const SQUATTER = fingerprint('carol')

function knownPeers(client: TestClient): Record<string, string> {
  const file = path.join(client.client.config.profile!, 'known-peers.json')
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>) : {}
}

/** Resolves at the next introduction of `peer` to `client` with the key `fingerprint`: the server's word has arrived. */
function introduced(client: TestClient, peer: string, fingerprint: string): Promise<void> {
  return new Promise((resolve) => {
    let done = false
    client.client.hooks.peerDiscovered.tap('test', ({ name, publicKey }) => {
      if (done || name !== peer || !publicKey || identityOfPublic(publicKey) !== fingerprint) return
      done = true
      resolve()
    })
  })
}

/** Resolves when `client` loses its path to `peer` (the peer said bye): the next connect asks the server again. */
function lost(client: TestClient, peer: string): Promise<void> {
  return new Promise((resolve) => {
    let done = false
    client.client.hooks.peerLost.tap('test', (name) => {
      if (done || name !== peer) return
      done = true
      resolve()
    })
  })
}

/** Resolves once `client` has a path to `peer` (at once if it has one). */
function pathTo(client: TestClient, peer: string): Promise<void> {
  if (client.client.container.cradle.peers.get(peer)?.path) return Promise.resolve()
  return new Promise((resolve) => {
    let done = false
    client.client.hooks.peerConnected.tap('test', (name) => {
      if (done || name !== peer) return
      done = true
      resolve()
    })
  })
}

async function command(client: TestClient, line: string): Promise<{ info: string[]; error: string[] }> {
  const said = { info: [] as string[], error: [] as string[] }
  await client.client.container.cradle.commands.run(line, {
    info: (text) => said.info.push(text),
    error: (text) => said.error.push(text),
  })
  return said
}

describe('trust on first use against a name squatter', function () {
  this.timeout(60_000)
  const running: TestClient[] = []
  let server: HostileServer
  let address: string

  beforeEach(async () => {
    // An honest relay of introductions that checks nothing: the last to register a name holds it.
    server = new HostileServer((_recipient, peer) => peer)
    address = await server.listen()
  })
  afterEach(async () => {
    for (const client of running.splice(0).reverse()) await client.client.stop().catch(() => undefined)
    await server.close()
  })
  after(cleanupTemp)

  async function start(name: string, options: { key?: string; profile?: string } = {}): Promise<TestClient> {
    const client = makeClient(name, address, { plugins, ...options })
    running.push(client)
    await client.client.start()
    return client
  }
  async function stop(client: TestClient): Promise<void> {
    running.splice(running.indexOf(client), 1)
    await client.client.stop()
  }

  /** Stops whoever holds "alice" and waits until bob has heard it leave. */
  async function leaves(bob: TestClient, holder: TestClient): Promise<void> {
    // Its bye goes on the path; both ends must have one for bob to hear it.
    await Promise.all([pathTo(bob, 'alice'), pathTo(holder, 'bob')])
    const gone = lost(bob, 'alice')
    await stop(holder)
    await gone
  }
  /** Bob asks the server for "alice" and waits for the introduction of the key that now holds the name. */
  async function reintroduced(bob: TestClient, fingerprint: string): Promise<void> {
    const heard = introduced(bob, 'alice', fingerprint)
    await bob.client.connect('alice')
    await heard
  }

  it('pins nothing from an introduction alone: a squatter met only by connect is not the key the real owner is held to', async () => {
    const bob = await start('bob')
    const squatter = await start('alice', { key: 'carol' })
    // Introduced both ways and a direct path opened, but no handshake.
    expect(await bob.client.connect('alice')).to.equal('direct')
    expect(knownPeers(bob)).to.deep.equal({})
    await leaves(bob, squatter)

    const alice = await start('alice')
    const sent = await bob.client.send('alice', 'hello real alice')
    await alice.message('hello real alice')
    await bob.state(sent.id, 'delivered')
    expect(bob.problems.filter((p) => p.code === 'key-changed')).to.deep.equal([])
    expect(knownPeers(bob)).to.deep.equal({ alice: REAL_ALICE })
  })

  it('/trust pins the key the warning named, the pinned key coming back clears the warning, and a queued message reaches only that key', async () => {
    // First contact with the squatter: a full handshake, so its key is pinned (what TOFU cannot tell apart).
    const bobProfile = fixtureProfile('bob')
    let bob = await start('bob', { profile: bobProfile })
    let squatter = await start('alice', { key: 'carol' })
    await bob.client.send('alice', 'to whoever is alice')
    await squatter.message('to whoever is alice')
    expect(knownPeers(bob)).to.deep.equal({ alice: SQUATTER })
    await leaves(bob, squatter)

    // The real alice returns: the warning names her key, and the safety numbers on both sides match.
    const aliceProfile = fixtureProfile('alice')
    let alice = await start('alice', { profile: aliceProfile })
    await reintroduced(bob, REAL_ALICE)
    const warning = await bob.waitFor('problem', bob.problems, (p) => p.code === 'key-changed' && p.peer === 'alice')
    expect(warning.message).to.include(`now ${REAL_ALICE}`)
    expect(bob.client.fingerprintOf('alice')).to.equal(alice.client.fingerprintOf('bob'))
    // A key other than the one shown is refused, and pins nothing.
    const wrong = await command(bob, `/trust alice ${SQUATTER.replace(/ /g, '')}`)
    expect(wrong.error.join()).to.match(/not the one you named/)
    expect(knownPeers(bob)).to.deep.equal({ alice: SQUATTER })
    // A few digits could match a key made for them: at least 16 are needed, given as shown (with spaces) or not.
    expect((await command(bob, `/trust alice ${REAL_ALICE.slice(0, 4)}`)).error.join()).to.match(
      /at least 16 hex digits/,
    )
    expect(knownPeers(bob)).to.deep.equal({ alice: SQUATTER })
    const trusted = await command(bob, `/trust alice ${REAL_ALICE.slice(0, 19)}`)
    expect(trusted.info.join()).to.include(REAL_ALICE)
    expect(knownPeers(bob)).to.deep.equal({ alice: REAL_ALICE })
    const greeting = await bob.client.send('alice', 'now to the real alice')
    await alice.message('now to the real alice')
    await bob.state(greeting.id, 'delivered')
    await leaves(bob, alice)

    // The squatter takes the name again: blocked and warned; the real key coming back clears that by itself.
    squatter = await start('alice', { key: 'carol' })
    await reintroduced(bob, SQUATTER)
    await bob.waitFor('problem', bob.problems, (p) => p.code === 'key-changed' && p.message.includes(`now ${SQUATTER}`))
    await leaves(bob, squatter)
    alice = await start('alice', { profile: aliceProfile })
    await reintroduced(bob, REAL_ALICE)
    expect((await command(bob, '/trust alice')).error.join()).to.match(/key of alice has not changed/)
    // A frontend still showing the squatter's warning names the squatter's key: refused, the pinned key stays.
    expect((await command(bob, `/trust alice ${SQUATTER}`)).error.join()).to.equal(
      `the key of alice has not changed: it is the one you already trust (${REAL_ALICE})`,
    )
    expect(knownPeers(bob)).to.deep.equal({ alice: REAL_ALICE })
    await leaves(bob, alice)

    // A message written while the squatter holds the name waits, across bob's restart, for the pinned key only.
    squatter = await start('alice', { key: 'carol' })
    const queued = await bob.client.send('alice', 'queued for the real alice')
    await bob.state(queued.id, 'failed')
    await stop(bob)
    bob = await start('bob', { profile: bobProfile })
    await bob.waitFor('problem', bob.problems, (p) => p.code === 'key-changed')
    await leaves(bob, squatter)
    alice = await start('alice', { profile: aliceProfile })
    const arrived = await alice.message('queued for the real alice')
    expect(arrived.from).to.equal('bob')
    await bob.state(queued.id, 'delivered')
    expect(squatter.delivered.map((m) => m.text)).to.deep.equal([])
    expect(knownPeers(bob)).to.deep.equal({ alice: REAL_ALICE })
  })
})
