import { expect } from 'chai'
import fc from 'fast-check'
import { type App, complete, pair, payloadOf } from './harness'

const network = fc.record({
  seed: fc.integer(),
  loss: fc.double({ min: 0, max: 0.3, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
  reorder: fc.double({ min: 0, max: 0.3, noNaN: true }),
  delayMs: fc.integer({ min: 1, max: 100 }),
  jitterMs: fc.integer({ min: 0, max: 50 }),
})
// Mostly chat-sized, some multi-fragment up to the 64 KiB limit.
const sizes = fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 64 * 1024 })), {
  maxLength: 12,
})

function expectExactlyOnce(from: App, to: App, payloads: Map<string, Buffer>): void {
  expect(to.received.map((m) => m.id)).to.deep.equal(from.submitted)
  for (const message of to.received)
    expect(message.payload.equals(payloads.get(message.id) as Buffer), message.id).to.equal(true)
  expect(from.acked).to.deep.equal(from.submitted)
  expect(from.outbox.size).to.equal(0)
}

describe('reliable link: property', function () {
  this.timeout(120_000)

  it('delivers every message exactly once, in order, both ways, under loss, duplication and reordering', () => {
    fc.assert(
      fc.property(network, sizes, sizes, (net, sizesA, sizesB) => {
        const { net: lossy, a, b } = pair(net)
        const payloads = new Map<string, Buffer>()
        sizesA.forEach((size, i) => payloads.set(`a${i}`, payloadOf(i * 7 + 1, size)))
        sizesB.forEach((size, i) => payloads.set(`b${i}`, payloadOf(i * 7 + 2, size)))
        sizesA.forEach((_, i) => a.submit(`a${i}`, payloads.get(`a${i}`) as Buffer))
        sizesB.forEach((_, i) => b.submit(`b${i}`, payloads.get(`b${i}`) as Buffer))
        const done = lossy.run(() => complete(a, b) && complete(b, a), 600_000)
        expect(done, `not done at ${lossy.now} ms`).to.equal(true)
        expectExactlyOnce(a, b, payloads)
        expectExactlyOnce(b, a, payloads)
        expect(lossy.stats.receiveErrors).to.deep.equal([])
        expect(lossy.stats.largestFrame).to.be.at.most(1100)
        expect([...a.errors, ...b.errors]).to.deep.equal([])
      }),
      { numRuns: 150 },
    )
  })

  it('holds with an async, slow deliver (acks wait for the app)', async () => {
    await fc.assert(
      fc.asyncProperty(network, sizes, async (net, sizesA) => {
        const { net: lossy, a, b } = pair(net, { deliverDelayMs: 30 })
        const payloads = new Map<string, Buffer>()
        sizesA.forEach((size, i) => payloads.set(`a${i}`, payloadOf(i + 11, size)))
        sizesA.forEach((_, i) => a.submit(`a${i}`, payloads.get(`a${i}`) as Buffer))
        expect(await lossy.runAsync(() => complete(a, b), 600_000), `not done at ${lossy.now} ms`).to.equal(true)
        expectExactlyOnce(a, b, payloads)
      }),
      { numRuns: 30 },
    )
  })
})
