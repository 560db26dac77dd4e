import { expect } from 'chai'
import { CookieJar, RateLimiter } from '../guard'

describe('server guard', () => {
  describe('CookieJar', () => {
    let now = 1_000_000
    const jar = new CookieJar(60_000, () => now)
    const alice = { address: '198.18.0.10', port: 4000 }

    it('accepts its own cookie from the same endpoint only', () => {
      const cookie = jar.issue(alice)
      expect(jar.valid(alice, cookie)).to.equal(true)
      expect(jar.valid({ ...alice, port: 4001 }, cookie)).to.equal(false)
      expect(jar.valid({ ...alice, address: '198.18.0.11' }, cookie)).to.equal(false)
    })

    it('keeps a cookie valid into the next period, not beyond', () => {
      const cookie = jar.issue(alice)
      now += 60_000
      expect(jar.valid(alice, cookie)).to.equal(true)
      now += 60_000
      expect(jar.valid(alice, cookie)).to.equal(false)
    })

    it('rejects malformed and foreign cookies without throwing', () => {
      for (const bad of [undefined, 42, '', 'zz', 'a'.repeat(32), 'A'.repeat(32), new CookieJar().issue(alice)]) {
        expect(jar.valid(alice, bad)).to.equal(false)
      }
    })
  })

  describe('RateLimiter', () => {
    it('allows a burst, then the steady rate, per source', () => {
      let now = 0
      const limiter = new RateLimiter(10, 5, 100, () => now)
      const allowed = () => Array.from({ length: 20 }, () => limiter.allow('a')).filter(Boolean).length
      expect(allowed()).to.equal(5)
      expect(limiter.allow('b')).to.equal(true) // another source has its own bucket
      now += 1000
      expect(allowed()).to.equal(5) // refilled up to the burst, not beyond
      now += 300
      expect(allowed()).to.equal(3)
    })

    it('bounds its table, forgetting the least recently seen source', () => {
      const limiter = new RateLimiter(1, 1, 3, () => 0)
      for (const source of ['a', 'b', 'c', 'd']) limiter.allow(source)
      expect(limiter.size).to.equal(3)
      expect(limiter.allow('a')).to.equal(true) // forgotten, so it starts with a full bucket again
      expect(limiter.allow('d')).to.equal(false)
    })
  })
})
