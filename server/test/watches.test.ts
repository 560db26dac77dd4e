// Who waits for an offline name: taken once when it registers, forgotten after the ttl, bounded per asker and in all.
import { expect } from 'chai'
import { Watches } from '../watches'

describe('server Watches', () => {
  it('gives the waiting askers of a name once, and forgets those past their time', () => {
    const watches = new Watches(1000, 4, 100)
    watches.add('alice', 'bob', 0)
    watches.add('carol', 'bob', 500)
    watches.add('alice', 'dave', 0)
    expect(watches.take('bob', 1200)).to.deep.equal(['carol']) // alice's watch ended at 1000
    expect(watches.take('bob', 1200)).to.deep.equal([])
    expect(watches.size).to.equal(1)
    watches.add('alice', 'dave', 900) // asking again renews
    expect(watches.take('dave', 1500)).to.deep.equal(['alice'])
    expect(watches.size).to.equal(0)
  })

  it('holds at most so many names per asker and in all, and makes room by dropping the expired', () => {
    const watches = new Watches(1000, 2, 3)
    for (const name of ['b', 'c', 'd']) watches.add('alice', name, 0)
    expect(watches.size).to.equal(2) // alice's third is ignored
    watches.add('carol', 'b', 0)
    watches.add('dave', 'b', 0) // full
    expect(watches.take('b', 10)).to.deep.equal(['alice', 'carol'])
    watches.add('erin', 'x', 0)
    watches.add('frank', 'y', 0) // full again
    watches.add('gina', 'z', 2000) // the three that ended at 1000 make room
    expect(watches.size).to.equal(1)
    expect(watches.take('z', 2100)).to.deep.equal(['gina'])
    watches.add('gina', 'z', 2100)
    watches.expire(3101)
    expect(watches.size).to.equal(0)
  })
})
