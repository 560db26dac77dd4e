// The FIFO behind the core's per-peer send queue and the reliable link's outbox: order, peek, length and iteration
// hold for any mix of pushes and shifts, including across the internal compaction of a long queue.
import { expect } from 'chai'
import fc from 'fast-check'
import { Fifo } from '../fifo'

describe('Fifo', () => {
  it('gives items back in the order they were pushed, with peek, length and iteration agreeing with an array', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant('shift' as const)), { maxLength: 5000 }), (ops) => {
        const fifo = new Fifo<number>()
        const model: number[] = []
        for (const op of ops) {
          if (op === 'shift') expect(fifo.shift()).to.equal(model.shift())
          else {
            fifo.push(op)
            model.push(op)
          }
          expect(fifo.length).to.equal(model.length)
          expect(fifo.peek()).to.equal(model[0])
        }
        expect([...fifo]).to.deep.equal(model)
      }),
      { numRuns: 50 },
    )
  })

  it('keeps order through a long queue drained while it grows (the compaction of the consumed front)', () => {
    const fifo = new Fifo<number>()
    let next = 0
    let expected = 0
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1000; i++) fifo.push(next++)
      for (let i = 0; i < 900; i++) expect(fifo.shift()).to.equal(expected++)
    }
    expect(fifo.length).to.equal(next - expected)
    expect([...fifo][0]).to.equal(expected)
    while (fifo.length > 0) expect(fifo.shift()).to.equal(expected++)
    expect(fifo.shift()).to.equal(undefined)
    fifo.push(7)
    fifo.clear()
    expect(fifo.length).to.equal(0)
    expect(fifo.peek()).to.equal(undefined)
  })
})
