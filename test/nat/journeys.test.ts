// A day of real use through real NATs (issue 10): journeys 1, 2 and 6 of test/journeys/restart.test.ts between EIM NATs
// and between a symmetric NAT and an EIM one (the relay carries the first messages there), and journey 7 under 20 %
// loss. Real server and clients in the namespace lab, reliable delivery on as users run udsu, restarts with the same
// profile. Each journey starts from a quiet conversation (every receipt back) and times a message written after the event.
import { expect } from 'chai'
import type { LabHost } from '../lab/lab'
import { deliver, expectDelivered, figure, quiet } from '../journeys/support'
import { expectExactlyInOrder, inputLossDrops, received, setInputLoss } from '../reliability/support'
import type { Event, HeadlessClient } from '../support/processes'
import { median, pathsTo, useNatWorld, type FixtureKey } from './world'

/** Loss for journey 7: each datagram between any two lab hosts (clients and server) is dropped with this probability. */
const LOSS = 0.2
const RUNS = Number(process.env.UDSU_JOURNEY_RUNS ?? 5)
/** Journey 7 under loss: all must arrive within this of the receiver's start (see the comment at the assertion). */
const LOSSY_BOUND_MS = 15_000
/** Journey 7: this many messages written in the QUEUE_MS after the receiver stopped. */
const QUEUED = 20
const QUEUE_MS = 3_000

const TOPOLOGIES = [
  { title: 'EIM ↔ EIM', alice: 'a', bob: 'b', tag: 'e' },
  { title: 'symmetric ↔ EIM', alice: 'a', bob: 's', tag: 's' },
] as const

describe('NAT journeys: a quiet conversation survives quits, restarts and a new key through real NATs (lab)', function () {
  this.timeout(120_000)
  const running: HeadlessClient[] = []
  // Before useNatWorld's hooks, so that a failed journey prints every client's log before its clients are killed.
  afterEach(async function () {
    // UDSU_JOURNEY_LOGS=1 shows them for every journey, to see where the time of a slow one went.
    if (this.currentTest?.state === 'failed' || process.env.UDSU_JOURNEY_LOGS)
      for (const c of running) console.log(`--- ${c.name}\n${c.describe()}`)
    running.splice(0)
    await Promise.all(['a', 'b', 's', 'srv'].map((host) => setInputLoss(world().lab.host(host), 0)))
  })
  const world = useNatWorld(
    {
      nats: [
        { name: 'home', type: 'eim' },
        { name: 'office', type: 'eim' },
        { name: 'mobile', type: 'symmetric' },
      ],
      hosts: [
        { name: 'srv' },
        { name: 'a', behind: 'home' },
        { name: 'b', behind: 'office' },
        { name: 's', behind: 'mobile' },
      ],
    },
    { host: 'srv' },
  )
  const seven: Array<{ ms: number; drops: number }> = []
  after(() => {
    if (seven.length === 0) return
    const times = seven.map((r) => r.ms)
    console.log(
      `      7 under ${LOSS * 100} % loss, ${QUEUED} queued, from the receiver's start: ${times.join(', ')} ms (median ${median(times)}, max ${Math.max(...times)}; drops ${seven.map((r) => r.drops).join(', ')})`,
    )
  })

  /** Fresh names per journey: a killed client's registration and the server's watches do not reach into the next one. */
  let journey = 0
  /** Starts (or, with `profile`, restarts) a client with reliable delivery, as users run udsu. */
  const start = async (host: string, name: string, key: FixtureKey, profile?: string) => {
    const client = await world().client(host, name, key, {}, { reliable: true, profile })
    running.push(client)
    return client
  }
  const again = (client: HeadlessClient, host: string, key: FixtureKey) => start(host, client.name, key, client.profile)
  /** Restarts a client without waiting for `ready`, so that what reaches it is timed from its start. */
  const spawnAgain = (client: HeadlessClient, host: string, key: FixtureKey) => {
    const restarted = world().spawn(host, client.name, key, {}, { reliable: true, profile: client.profile })
    running.push(restarted)
    return restarted
  }
  /** The paths `client` reported to `peer` since `before` of them, or that it kept the one it had. */
  const via = (client: HeadlessClient, peer: string, before = 0) =>
    pathsTo(client, peer).slice(before).join(' → ') || `kept ${pathsTo(client, peer).at(-1) ?? 'none'}`

  for (const t of TOPOLOGIES) {
    describe(t.title, () => {
      /** alice and bob, who have written to each other: every receipt is back, nothing is in flight. */
      async function quietPair() {
        journey++
        const [alice, bob] = await Promise.all([
          start(t.alice, `alice${t.tag}${journey}`, 'alice'),
          start(t.bob, `bob${t.tag}${journey}`, 'bob'),
        ])
        await quiet(alice, bob)
        return { alice, bob }
      }

      it('1. the receiver quits and comes back: what is written then arrives within 1 s', async () => {
        const { alice, bob } = await quietPair()
        const before = pathsTo(alice, bob.name).length
        expect(await bob.quit()).to.equal(0)
        const bobAgain = await again(bob, t.bob, 'bob')
        const ms = await deliver(alice, bobAgain, 'still there?')
        figure(`1 ${t.title}: receiver quit, back, then written (${via(alice, bob.name, before)})`, ms)
        expectDelivered(ms, 1000)
        expectDelivered(
          figure(
            `1 ${t.title}: its answer (${via(bobAgain, alice.name)})`,
            await deliver(bobAgain, alice, 'yes, back'),
          ),
          1000,
        )
      })

      it("1. written while the receiver is away: it arrives within 2 s of the receiver's start", async () => {
        const { alice, bob } = await quietPair()
        const before = pathsTo(alice, bob.name).length
        expect(await bob.quit()).to.equal(0)
        await alice.waitFor((e) => e.type === 'lost' && e.peer === bob.name, 'alice to see bob leave')
        const mark = alice.lines.length
        alice.send({ type: 'send', to: bob.name, text: 'when you are back' })
        const pending = await alice.waitFor((e) => e.type === 'pending', 'the message to wait for bob', 15_000, mark)
        const started = Date.now()
        const bobAgain = spawnAgain(bob, t.bob, 'bob')
        await bobAgain.message('when you are back')
        expectDelivered(
          figure(
            `1 ${t.title}: written while away, from the receiver's start (${via(alice, bob.name, before)})`,
            Date.now() - started,
          ),
          2000,
        )
        await alice.waitFor((e) => e.type === 'delivered' && e.id === pending.id, 'the receipt', 15_000, mark)
      })

      it('2. the sender quits and comes back, and writes: it arrives within 1 s', async () => {
        const { alice, bob } = await quietPair()
        const before = pathsTo(bob, alice.name).length
        expect(await alice.quit()).to.equal(0)
        const aliceAgain = await again(alice, t.alice, 'alice')
        const ms = await deliver(aliceAgain, bob, 'I am back')
        figure(`2 ${t.title}: sender quit, back, writes (${via(aliceAgain, bob.name)})`, ms)
        expectDelivered(ms, 1000)
        expectDelivered(
          figure(
            `2 ${t.title}: the answer (${via(bob, aliceAgain.name, before)})`,
            await deliver(bob, aliceAgain, 'welcome back'),
          ),
          1000,
        )
      })

      it('6. the peer comes back with a new key: the sender is told at once, and nothing reaches the new key until accepted', async () => {
        const { alice, bob } = await quietPair()
        const oldFingerprint = (await bob.waitFor((e) => e.type === 'ready', 'bob ready')).fingerprint as string
        const before = pathsTo(alice, bob.name).length
        // The server keeps the name for bob's key: moving to a new key, he gives it up first.
        bob.send({ type: 'command', line: '/release' })
        await bob.waitFor(
          (e) => e.type === 'info' && String(e.text).startsWith(`the server released ${bob.name}`),
          'the release',
        )
        expect(await bob.quit()).to.equal(0)
        const mark = alice.lines.length
        // The same name, another key (a new device or a reinstalled profile).
        const started = Date.now()
        const newBob = await start(t.bob, bob.name, 'dave')
        const newFingerprint = (await newBob.waitFor((e) => e.type === 'ready', 'the new bob ready'))
          .fingerprint as string
        // Told before writing anything: the warning names both fingerprints.
        const warning = await alice.waitFor(
          (e) => e.type === 'error' && new RegExp(`key of ${bob.name} has changed`).test(String(e.message)),
          'the key-change warning',
          5_000,
          mark,
        )
        figure(`6 ${t.title}: the warning, from the new key's start`, Date.now() - started)
        expect(warning.message).to.include(oldFingerprint).and.to.include(newFingerprint)
        const written = alice.lines.length
        alice.send({ type: 'send', to: bob.name, text: 'for the old key only' })
        const failed = await alice.waitFor(
          (e) => e.type === 'error' && e.to === bob.name && typeof e.id === 'string',
          'the message to be held back',
          15_000,
          written,
        )
        expect(failed.message).to.include(`/trust ${bob.name}`)
        // The user compares the safety numbers and accepts: the held message goes to the new key, once.
        alice.send({ type: 'command', line: `/trust ${bob.name}` })
        await newBob.message('for the old key only')
        await alice.waitFor(
          (e) => e.type === 'delivered' && e.id === failed.id,
          'the held message delivered after /trust',
          15_000,
          written,
        )
        const ms = await deliver(alice, newBob, 'hello new key')
        figure(`6 ${t.title}: after /trust, the next message (${via(alice, bob.name, before)})`, ms)
        expectDelivered(ms, 1000)
        expect(newBob.messages().map((m) => m.text)).to.deep.equal(['for the old key only', 'hello new key'])
      })
    })
  }

  describe(`EIM ↔ EIM under ${LOSS * 100} % loss`, () => {
    const hosts = (): LabHost[] => ['a', 'b', 'srv'].map((name) => world().lab.host(name))

    for (let run = 1; run <= RUNS; run++) {
      it(`7. ${QUEUED} written in the ${QUEUE_MS / 1000} s after the receiver stopped, the sender restarted in between: all arrive, in order, once, within ${LOSSY_BOUND_MS / 1000} s of the receiver's start (run ${run})`, async () => {
        journey++
        const [alice, bob] = await Promise.all([
          start('a', `alice7${journey}`, 'alice'),
          start('b', `bob7${journey}`, 'bob'),
        ])
        await quiet(alice, bob)
        // On INPUT only (see setInputLoss): every datagram between two hosts crosses one such rule, so each is lost with LOSS.
        await Promise.all(hosts().map((host) => setInputLoss(host, LOSS)))
        expect(await bob.quit()).to.equal(0)
        const texts = Array.from({ length: QUEUED }, (_, i) => `queued ${run}.${i}`)
        const mark = alice.lines.length
        // Written as a user would, spread over the seconds after bob left (its goodbye may have been lost).
        for (const text of texts) {
          alice.send({ type: 'send', to: bob.name, text })
          await new Promise((resolve) => setTimeout(resolve, QUEUE_MS / QUEUED))
        }
        const queued = () => alice.lines.slice(mark).filter((e: Event) => e.type === 'pending' && e.to === bob.name)
        await alice.waitFor(() => queued().length === QUEUED, 'the messages to be queued', 15_000, mark)
        const ids = queued().map((e) => String(e.id))
        expect(await alice.quit()).to.equal(0)
        const aliceAgain = await again(alice, 'a', 'alice')
        // Restarted in between: back online before the receiver returns (its own registration under loss is not the
        // receiver's return; 'ready' comes after a first registration attempt, which loss may have cut short).
        await aliceAgain.waitFor(
          (e) => e.type === 'server' && e.online === true,
          'the restarted sender to be online',
          30_000,
        )
        const started = Date.now()
        const bobAgain = spawnAgain(bob, 'b', 'bob')
        await bobAgain.message(texts[QUEUED - 1], 60_000)
        const ms = Date.now() - started
        const drops = (await Promise.all(hosts().map(inputLossDrops))).reduce((x, y) => x + y, 0)
        seven.push({ ms, drops })
        figure(
          `7 under ${LOSS * 100} % loss (run ${run}, ${drops} datagrams dropped): ${QUEUED} queued, sender restarted, from the receiver's start`,
          ms,
        )
        expectExactlyInOrder(received(bobAgain, alice.name, 'queued'), texts)
        // The restarted sender still knows them as its own: their receipts reach it.
        for (const id of ids)
          await aliceAgain.waitFor((e) => e.type === 'delivered' && e.id === id, `the receipt of ${id}`, 30_000)
        expect(drops).to.be.greaterThan(0)
        // Without loss the receiver's start is followed by its message within 2 s (loopback, and journey 1 here). At 20 %
        // loss some ten round trips in a row (registration, introduction, punch, handshake, the link's first exchange)
        // each fail a third of the time and wait for a retry timer: median 2.5 s, worst seen 8.4 s (docs/NAT.md).
        // Before issue 10 it took up to 17.6 s and, in 1 run of 5, never. The bound is the worst case with margin.
        expectDelivered(ms, LOSSY_BOUND_MS)
      })
    }
  })
})
