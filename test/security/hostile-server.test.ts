// A rendezvous server that swaps keys or addresses in introductions: the client refuses or warns, and no plaintext reaches the wrong side.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createPublicKey } from 'node:crypto'
import { HostileServer, Impostor } from '../support/hostile-server'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp, FIXTURE_KEYS } from '../support/processes'
import type { Endpoint } from '../../core/types'

const publicPem = (name: string) =>
  createPublicKey(fs.readFileSync(path.join(FIXTURE_KEYS, `${name}.pem`)))
    .export({ type: 'spki', format: 'pem' })
    .toString()

/** Every datagram a client receives, recorded before any plugin sees it. */
function wiretap(client: TestClient): Buffer[] {
  const seen: Buffer[] = []
  client.client.hooks.receive.tap({ name: 'wiretap', stage: -1000 }, (datagram) => {
    seen.push(Buffer.from(datagram.bytes))
    return undefined
  })
  return seen
}

const contains = (datagrams: Buffer[], text: string) => datagrams.some((d) => d.includes(Buffer.from(text)))
// Fast handshakes failures, so a refused session fails the message in about a second.
const fastRsa = { resolve: 'rsa', options: { handshakeTimeoutMs: 1500 } }
const plugins = [{ resolve: 'udp', options: {} }, { resolve: 'hole-punch', options: {} }, fastRsa]

describe('a hostile rendezvous server', function () {
  this.timeout(30_000)
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined)
  })
  after(cleanupTemp)

  async function start(client: TestClient): Promise<TestClient> {
    stops.push(() => client.client.stop())
    await client.client.start()
    return client
  }

  it('cannot swap in another key for a peer we have met: the conversation is blocked with a warning', async () => {
    // First contact through an honest server: alice remembers bob's key.
    const honest = await startServer()
    stops.push(() => honest.close())
    const honestAddress = `127.0.0.1:${honest.address().port}`
    const alice = await start(makeClient('alice', honestAddress, { plugins }))
    const bob = await start(makeClient('bob', honestAddress, { plugins }))
    await alice.client.send('bob', 'first contact')
    await bob.message('first contact')
    const aliceProfile = alice.client.config.profile!
    await alice.client.stop()
    await bob.client.stop()

    // Then a server that introduces carol's key as bob's.
    const liar = new HostileServer((recipient, peer) =>
      recipient === 'alice' && peer.name === 'bob' ? { ...peer, key: publicPem('carol') } : peer,
    )
    const liarAddress = await liar.listen()
    stops.push(() => liar.close())
    const alice2 = await start(makeClient('alice', liarAddress, { plugins, profile: aliceProfile }))
    const bob2 = await start(makeClient('bob', liarAddress, { plugins }))
    const bobWire = wiretap(bob2)

    const sent = await alice2.client.send('bob', 'secret after the swap')
    const warning = await alice2.waitFor('problem', alice2.problems, (p) => p.peer === 'bob')
    expect(warning.message).to.match(/key of bob has changed/)
    const failed = await alice2.state(sent.id, 'failed')
    expect(failed.reason).to.match(/key of bob has changed.*\/trust bob/)
    expect(bob2.delivered).to.deep.equal([])
    expect(contains(bobWire, 'secret after the swap')).to.equal(false)
  })

  it('cannot make a first contact with a swapped key succeed, and the safety numbers then differ', async () => {
    const liar = new HostileServer((recipient, peer) =>
      recipient === 'alice' && peer.name === 'bob' ? { ...peer, key: publicPem('carol') } : peer,
    )
    const address = await liar.listen()
    stops.push(() => liar.close())
    const alice = await start(makeClient('alice', address, { plugins }))
    const bob = await start(makeClient('bob', address, { plugins }))
    const bobWire = wiretap(bob)

    const sent = await alice.client.send('bob', 'for bob only')
    const failed = await alice.state(sent.id, 'failed')
    expect(failed.reason).to.match(/no secure session with bob/)
    expect(bob.delivered).to.deep.equal([])
    expect(contains(bobWire, 'for bob only')).to.equal(false)
    // What people compare out of band shows the lie.
    expect(alice.client.fingerprintOf('bob')).to.be.a('string')
    expect(alice.client.fingerprintOf('bob')).not.to.equal(bob.client.fingerprintOf('alice'))
  })

  it('cannot redirect a path to an impostor: the impostor gets no plaintext and no session', async () => {
    // The liar hands its accomplice the token of the introduction it forges.
    const impostor = new Impostor('bob', () => liar.lastToken)
    const impostorAt: Endpoint = await impostor.listen()
    stops.push(() => impostor.close())
    // Bob never hears of the introduction, so the impostor is the only one answering alice's punches.
    const liar = new HostileServer((recipient, peer) =>
      recipient === 'alice' && peer.name === 'bob'
        ? { ...peer, public: impostorAt, local: [] }
        : recipient === 'bob'
          ? undefined
          : peer,
    )
    const address = await liar.listen()
    stops.push(() => liar.close())
    const alice = await start(makeClient('alice', address, { plugins }))
    const bob = await start(makeClient('bob', address, { plugins }))

    const sent = await alice.client.send('bob', 'not for the impostor')
    const failed = await alice.state(sent.id, 'failed')
    expect(failed.reason).to.match(/no secure session with bob/)
    // The impostor did get alice's traffic (the path was redirected), but nothing readable.
    expect(impostor.received.length).to.be.greaterThan(0)
    expect(contains(impostor.received, 'not for the impostor')).to.equal(false)
    expect(bob.delivered).to.deep.equal([])
  })
})
