import { expect } from 'chai'
import fc from 'fast-check'
import { type App, complete, pair, payloadOf } from './harness'

function submitMany(app: App, count: number, prefix: string): void {
  // Every fifth message spans several fragments.
  for (let i = 0; i < count; i++) app.submit(`${prefix}${i}`, payloadOf(i, i % 5 === 0 ? 5000 : 40))
}

function expectExactlyOnce(from: App, to: App): void {
  const ids = to.received.map((m) => m.id)
  expect(ids).to.deep.equal(from.submitted)
  expect(new Set(from.acked).size).to.equal(from.acked.length)
  expect([...from.acked].sort()).to.deep.equal([...from.submitted].sort())
  expect(from.outbox.size).to.equal(0)
}

describe('reliable link: restarts', function () {
  this.timeout(60_000)

  it('receiver restarts mid-stream: every message delivered once, none lost', () => {
    const { net, a, b } = pair({ seed: 1, loss: 0.1, reorder: 0.1, delayMs: 20, jitterMs: 10 })
    submitMany(a, 60, 'a')
    expect(net.run(() => b.received.length >= 20, 60_000)).to.equal(true)
    const epochBefore = b.epoch
    b.restart()
    expect(b.epoch).to.be.greaterThan(epochBefore)
    expect(net.run(() => complete(a, b), 600_000)).to.equal(true)
    expectExactlyOnce(a, b)
    expect(a.link.stats().streamResets).to.equal(1)
  })

  it('sender restarts with a new epoch and resubmits its persisted outbox: none twice, none lost', () => {
    const { net, a, b } = pair({ seed: 2, loss: 0.1, duplicate: 0.05, reorder: 0.1, delayMs: 20, jitterMs: 10 })
    submitMany(a, 60, 'a')
    expect(net.run(() => b.received.length >= 20, 60_000)).to.equal(true)
    a.restart()
    expect(a.link.unacked().length).to.be.greaterThan(0)
    expect(net.run(() => complete(a, b), 600_000)).to.equal(true)
    expectExactlyOnce(a, b)
  })

  it('drops frames of the old epoch that arrive after the new one', () => {
    // Long, jittery delay keeps old-epoch frames in flight across the restart.
    const { net, a, b } = pair({ seed: 3, reorder: 0.5, reorderMs: 400, delayMs: 30 })
    submitMany(a, 40, 'a')
    expect(net.run(() => b.received.length >= 5, 60_000)).to.equal(true)
    a.restart()
    expect(net.run(() => complete(a, b), 600_000)).to.equal(true)
    expectExactlyOnce(a, b)
    expect(b.link.stats().dropped).to.be.greaterThan(0)
  })

  it('holds for random restarts of either side, under loss, with slow async delivery', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.double({ min: 0, max: 0.2, noNaN: true }),
        fc.array(fc.record({ after: fc.integer({ min: 1, max: 400 }), who: fc.constantFrom('a', 'b') }), {
          maxLength: 4,
        }),
        fc.boolean(),
        async (seed, loss, restarts, slow) => {
          const { net, a, b } = pair(
            { seed, loss, reorder: 0.1, delayMs: 15, jitterMs: 10 },
            slow ? { deliverDelayMs: 25 } : {},
          )
          submitMany(a, 25, 'a')
          submitMany(b, 25, 'b')
          for (const restart of restarts) {
            for (let i = 0; i < restart.after && net.step(); i++)
              await new Promise<void>((resolve) => setImmediate(resolve))
            ;(restart.who === 'a' ? a : b).restart()
          }
          const done = await net.runAsync(() => complete(a, b) && complete(b, a), 900_000)
          expect(done, `not done at ${net.now} ms`).to.equal(true)
          expectExactlyOnce(a, b)
          expectExactlyOnce(b, a)
          expect(net.stats.receiveErrors).to.deep.equal([])
        },
      ),
      { numRuns: 25 },
    )
  })
})
