// A day of real use, with real processes on loopback: a conversation goes quiet (every receipt back), then someone quits,
// crashes or comes back with a new key, or the server restarts, and the next message written must still arrive.
import { expect } from 'chai'
import { cleanupTemp, fixtureProfile, HeadlessClient, ServerProcess } from '../support/processes'
import { deliver, expectDelivered, figure, quiet } from './support'

describe('journeys: a quiet conversation survives quits, crashes, restarts and a new key (real processes on loopback)', function () {
  this.timeout(60_000)
  const running: Array<HeadlessClient | ServerProcess> = []
  const track = <T extends HeadlessClient | ServerProcess>(p: T): T => (running.push(p), p)
  afterEach(function () {
    // A failed journey shows what every client logged: the failure names only the one it waited on.
    if (this.currentTest?.state === 'failed')
      for (const p of running) if (p instanceof HeadlessClient) console.log(`--- ${p.name}\n${p.describe()}`)
    for (const p of running.splice(0)) p.kill()
  })
  after(cleanupTemp)

  /** A server, alice and bob, who have written to each other: every receipt is back, nothing is in flight. */
  async function quietPair() {
    const server = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    await quiet(alice, bob)
    return { server, alice, bob }
  }
  const again = (client: HeadlessClient, server: ServerProcess) =>
    HeadlessClient.start({ name: client.name, server: server.address, profile: client.profile }).then(track)

  it('1. the receiver quits and comes back: what is written then arrives within 1 s', async () => {
    const { server, alice, bob } = await quietPair()
    expect(await bob.quit()).to.equal(0)
    const bobAgain = await again(bob, server)
    expectDelivered(figure('1 receiver quit, back, then written', await deliver(alice, bobAgain, 'still there?')), 1000)
    expectDelivered(figure('1 its answer', await deliver(bobAgain, alice, 'yes, back')), 1000)
  })

  it("1. written while the receiver is away: it arrives within 2 s of the receiver's start", async () => {
    const { server, alice, bob } = await quietPair()
    expect(await bob.quit()).to.equal(0)
    await alice.waitFor((e) => e.type === 'lost' && e.peer === 'bob', 'alice to see bob leave')
    const mark = alice.lines.length
    alice.send({ type: 'send', to: 'bob', text: 'when you are back' })
    const pending = await alice.waitFor((e) => e.type === 'pending', 'the message to wait for bob', 15_000, mark)
    const started = Date.now()
    const bobAgain = track(HeadlessClient.spawn({ name: 'bob', server: server.address, profile: bob.profile }))
    await bobAgain.message('when you are back')
    expectDelivered(figure("1 written while away, from the receiver's start", Date.now() - started), 2000)
    await alice.waitFor((e) => e.type === 'delivered' && e.id === pending.id, 'the receipt', 15_000, mark)
  })

  it('2. the sender quits and comes back, and writes: it arrives within 1 s', async () => {
    const { server, alice, bob } = await quietPair()
    expect(await alice.quit()).to.equal(0)
    const aliceAgain = await again(alice, server)
    expectDelivered(figure('2 sender quit, back, writes', await deliver(aliceAgain, bob, 'I am back')), 1000)
    expectDelivered(figure('2 the answer', await deliver(bob, aliceAgain, 'welcome back')), 1000)
  })

  it('3. both quit and come back, and either writes first', async () => {
    const { server, alice, bob } = await quietPair()
    expect(await alice.quit()).to.equal(0)
    expect(await bob.quit()).to.equal(0)
    // bob comes back first and alice writes first; then the other way round.
    let bobAgain = await again(bob, server)
    let aliceAgain = await again(alice, server)
    expectDelivered(
      figure('3 both back, the later one writes', await deliver(aliceAgain, bobAgain, 'both back (a)')),
      1000,
    )
    expectDelivered(figure('3 the earlier one answers', await deliver(bobAgain, aliceAgain, 'both back (b)')), 1000)
    expect(await aliceAgain.quit()).to.equal(0)
    expect(await bobAgain.quit()).to.equal(0)
    aliceAgain = await again(aliceAgain, server)
    bobAgain = await again(bobAgain, server)
    expectDelivered(
      figure('3 both back, the earlier one writes', await deliver(aliceAgain, bobAgain, 'both back (c)')),
      1000,
    )
    expectDelivered(figure('3 the later one answers', await deliver(bobAgain, aliceAgain, 'both back (d)')), 1000)
  })

  it('4. the receiver crashes and comes back on another port: found at once, not after the old path times out', async () => {
    const { server, alice, bob } = await quietPair()
    const oldPort = (await bob.waitFor((e) => e.type === 'server' && e.online === true, 'bob online')).server
    bob.kill() // SIGKILL: no goodbye to alice or the server
    await bob.exited
    const bobAgain = await again(bob, server)
    expect(bobAgain.stderr.join('\n')).to.match(/udp bound/)
    expect(oldPort).to.be.a('string')
    // The keepalive is 15 s and a path times out after 3.5 of them: within 1 s is only possible if alice found the new port.
    expectDelivered(
      figure(
        '4 receiver crashed, back on a new port, then written',
        await deliver(alice, bobAgain, 'after your crash'),
      ),
      1000,
    )
    expect(alice.lines.filter((e) => e.type === 'lost' && e.peer === 'bob')).to.deep.equal([])
  })

  it('5. the rendezvous server restarts under a quiet conversation; then either writes', async () => {
    const { server, alice, bob } = await quietPair()
    const port = server.port
    server.kill()
    await server.exited
    const serverAgain = track(await ServerProcess.start({ port, dataDir: server.dataDir }))
    expect(serverAgain.port).to.equal(port)
    expectDelivered(figure('5 server restarted, alice writes', await deliver(alice, bob, 'server went away')), 1000)
    expectDelivered(figure('5 server restarted, bob writes', await deliver(bob, alice, 'we did not notice')), 1000)
  })

  it('6. the peer comes back with a new key: the sender is told at once, and nothing reaches the new key until accepted', async () => {
    const { server, alice, bob } = await quietPair()
    const oldFingerprint = (await bob.waitFor((e) => e.type === 'ready', 'bob ready')).fingerprint as string
    // The server keeps "bob" for bob's key: moving to a new key, he gives the name up first.
    bob.send({ type: 'command', line: '/release' })
    await bob.waitFor((e) => e.type === 'info' && String(e.text).startsWith('the server released bob'), 'the release')
    expect(await bob.quit()).to.equal(0)
    const mark = alice.lines.length
    // The same name, another key (a new device or a reinstalled profile).
    const newBob = track(
      await HeadlessClient.start({ name: 'bob', server: server.address, profile: fixtureProfile('dave') }),
    )
    const newFingerprint = (await newBob.waitFor((e) => e.type === 'ready', 'the new bob ready')).fingerprint as string
    // Told before writing anything: the warning names both fingerprints.
    const warning = await alice.waitFor(
      (e) => e.type === 'error' && /key of bob has changed/.test(String(e.message)),
      'the key-change warning',
      5_000,
      mark,
    )
    expect(warning.message).to.include(oldFingerprint).and.to.include(newFingerprint)
    const written = alice.lines.length
    alice.send({ type: 'send', to: 'bob', text: 'for the old key only' })
    const failed = await alice.waitFor(
      (e) => e.type === 'error' && e.to === 'bob' && typeof e.id === 'string',
      'the message to be held back',
      15_000,
      written,
    )
    expect(failed.message).to.match(/\/trust bob/)
    // The user compares the safety numbers and accepts: the held message goes to the new key, once.
    alice.send({ type: 'command', line: '/trust bob' })
    await newBob.message('for the old key only')
    await alice.waitFor(
      (e) => e.type === 'delivered' && e.id === failed.id,
      'the held message delivered after /trust',
      15_000,
      written,
    )
    expectDelivered(figure('6 after /trust, the next message', await deliver(alice, newBob, 'hello new key')), 1000)
    expect(newBob.messages().map((m) => m.text)).to.deep.equal(['for the old key only', 'hello new key'])
  })

  it("7. written while the receiver is offline, and the sender restarts in between: arrives within 2 s of the receiver's start", async () => {
    const { server, alice, bob } = await quietPair()
    expect(await bob.quit()).to.equal(0)
    await alice.waitFor((e) => e.type === 'lost' && e.peer === 'bob', 'alice to see bob leave')
    const texts = ['queued 1', 'queued 2', 'queued 3']
    const mark = alice.lines.length
    for (const text of texts) alice.send({ type: 'send', to: 'bob', text })
    const queued = () => alice.lines.slice(mark).filter((e) => e.type === 'pending')
    await alice.waitFor(() => queued().length === texts.length, 'the messages to be queued', 15_000, mark)
    const ids = queued().map((e) => e.id)
    expect(await alice.quit()).to.equal(0)
    const aliceAgain = await again(alice, server)
    const started = Date.now()
    const bobAgain = track(HeadlessClient.spawn({ name: 'bob', server: server.address, profile: bob.profile }))
    for (const text of texts) await bobAgain.message(text)
    expectDelivered(figure("7 queued, sender restarted, from the receiver's start", Date.now() - started), 2000)
    expect(bobAgain.messages().map((m) => m.text)).to.deep.equal(texts)
    // The restarted sender still knows them as its own: their receipts reach it.
    for (const id of ids) await aliceAgain.waitFor((e) => e.type === 'delivered' && e.id === id, `the receipt of ${id}`)
  })
})
