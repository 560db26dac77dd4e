// The plugin in two in-process clients on loopback (udp, hole-punch, rsa, reliable): the whole pipeline, no child processes.
import { expect } from 'chai'
import * as fs from 'node:fs'
import { MAX_TEXT_BYTES } from '../../../protocol'
import type { RendezvousServer } from '../../../server/index'
import { fixtureProfile, startClient, startServer, type TestClient } from './clients'
import { DurableState } from '../durable'

const states = (c: TestClient, state: string, to?: string) =>
  c.states.filter((s) => s.state === state && (!to || s.to === to))

describe('reliable plugin (in-process clients on loopback)', function () {
  this.timeout(60_000)
  let server: RendezvousServer
  let address: string
  const running: TestClient[] = []
  const profiles: string[] = []
  const start = async (name: string, options: Parameters<typeof startClient>[2] = {}) => {
    const c = await startClient(name, address, options)
    running.push(c)
    if (!options.profile) profiles.push(c.profile)
    return c
  }

  beforeEach(async () => ({ server, address } = await startServer()))
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.client.stop()))
    await server.close()
  })
  after(() => profiles.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

  it('delivers a burst both ways exactly once and in order, with sent and delivered for every message', async () => {
    const alice = await start('alice')
    const bob = await start('bob')
    const ids = { alice: [] as string[], bob: [] as string[] }
    const sends: Promise<unknown>[] = []
    for (let i = 0; i < 500; i++) {
      sends.push(alice.client.send('bob', `a${i}`).then((m) => ids.alice.push(m.id)))
      sends.push(bob.client.send('alice', `b${i}`).then((m) => ids.bob.push(m.id)))
    }
    await Promise.all(sends)
    await bob.until('500 messages', () => bob.delivered.length >= 500)
    await alice.until('500 messages', () => alice.delivered.length >= 500)
    expect(bob.delivered.map((m) => m.text)).to.deep.equal(Array.from({ length: 500 }, (_, i) => `a${i}`))
    expect(alice.delivered.map((m) => m.text)).to.deep.equal(Array.from({ length: 500 }, (_, i) => `b${i}`))
    for (const [c, mine] of [
      [alice, ids.alice],
      [bob, ids.bob],
    ] as const) {
      await c.until('every message delivered', () => states(c, 'delivered').length >= 500)
      expect(states(c, 'delivered').map((s) => s.id)).to.deep.equal(mine)
      expect(states(c, 'sent').map((s) => s.id)).to.have.members(mine)
      expect(states(c, 'failed')).to.deep.equal([])
    }
  })

  it('carries a 64 KiB message whole, and refuses a longer one with a clear error', async () => {
    const alice = await start('alice')
    const bob = await start('bob')
    const text = Array.from({ length: MAX_TEXT_BYTES }, (_, i) => String.fromCharCode(33 + (i % 90))).join('')
    expect(Buffer.byteLength(text)).to.equal(64 * 1024)
    await alice.client.send('bob', text)
    await bob.until('the long message', () => bob.delivered.length === 1)
    expect(bob.delivered[0].text).to.equal(text)
    let error: Error | undefined
    await alice.client.send('bob', text + 'x').catch((e: Error) => (error = e))
    expect(error?.message).to.equal(`the message is longer than ${MAX_TEXT_BYTES} bytes`)
  })

  it('keeps messages to an offline peer pending on disk, across a restart of the sender, until the peer returns', async () => {
    const aliceProfile = fixtureProfile('alice')
    const bobProfile = fixtureProfile('bob')
    profiles.push(aliceProfile, bobProfile)
    const bob = await start('bob', { profile: bobProfile })
    let alice = await start('alice', { profile: aliceProfile })
    await alice.client.send('bob', 'before')
    await alice.until('the first receipt', () => states(alice, 'delivered').length === 1)
    await bob.client.stop()
    running.splice(running.indexOf(bob), 1)

    for (let i = 0; i < 20; i++) await alice.client.send('bob', `queued ${i}`)
    expect(states(alice, 'pending')).to.have.length(21)
    await alice.client.stop()
    running.splice(running.indexOf(alice), 1)
    expect(states(alice, 'delivered')).to.have.length(1) // the 20 were never acknowledged
    expect(states(alice, 'sent')).to.have.length(1) // nor sent: bob has no path

    alice = await start('alice', { profile: aliceProfile })
    expect(states(alice, 'pending').length).to.equal(20) // reported again by the new process
    const bobAgain = await start('bob', { profile: bobProfile })
    await bobAgain.until('the queued messages', () => bobAgain.delivered.length >= 20)
    await alice.until('every receipt', () => states(alice, 'delivered').length >= 20)
    expect(bobAgain.delivered.map((m) => m.text)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `queued ${i}`))
    // The receipts are on disk: a restarted alice has nothing left to send.
    await alice.client.stop()
    running.splice(running.indexOf(alice), 1)
    const state = DurableState.open(aliceProfile, { seenIdsPerPeer: 100, seenIdsTotal: 100_000, compactBytes: 1 << 20 })
    expect(state.outboxEntries()).to.deep.equal([])
    await state.close()
  })

  it('sends what waits for an offline peer as soon as it comes online, not at the next retry', async () => {
    // Retries 10 s apart: only the server's introduction on bob's registration can bring the message sooner.
    const alice = await start('alice', { reliable: { retryMinMs: 10_000, retryMaxMs: 10_000 } })
    const sent = await alice.client.send('bob', 'waiting for you')
    await alice.until('the message pending', () => states(alice, 'pending').some((s) => s.id === sent.id))
    const bobStarted = Date.now()
    const bob = await start('bob')
    await bob.until('the waiting message', () => bob.delivered.some((m) => m.id === sent.id), 5_000)
    expect(Date.now() - bobStarted).to.be.below(5_000)
    await alice.until('its receipt', () => states(alice, 'delivered').some((s) => s.id === sent.id), 5_000)
  })

  it('refuses a message when the outbox for a peer is full, saying why', async () => {
    const alice = await start('alice', { reliable: { maxOutboxMessages: 3 } })
    const bobProfile = fixtureProfile('bob')
    profiles.push(bobProfile)
    for (let i = 0; i < 4; i++) await alice.client.send('bob', `m${i}`) // bob is not online
    await alice.until('the refusal', () => states(alice, 'failed').length === 1)
    expect(states(alice, 'failed')[0].reason).to.match(/outbox for bob is full \(3 messages not yet delivered\)/)
    expect(states(alice, 'pending')).to.have.length(4)
  })

  it('refuses a message when the outbox holds its maximum bytes for all peers together, saying why', async () => {
    // 64 KiB, the least the option allows: two messages of 30,000 characters fit, a third does not, to anyone.
    const alice = await start('alice', { reliable: { maxOutboxBytes: 64 * 1024 } })
    const text = 'x'.repeat(30_000)
    for (const to of ['bob', 'carol', 'dave']) await alice.client.send(to, text) // nobody is online
    await alice.until('the refusal', () => states(alice, 'failed').length === 1)
    const [refused] = states(alice, 'failed')
    expect(refused.to).to.equal('dave')
    expect(refused.reason).to.match(
      /the outbox is full \(59 KiB of undelivered messages, at most 64 KiB\); wait until peers receive them/,
    )
  })
})
