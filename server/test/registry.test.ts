// Who is online: names bound to keys and endpoints, refreshed by keepalives, freed on expiry. Time is passed in.
import { expect } from 'chai'
import { addressPrefix, Registry } from '../registry'

const TTL = 1000
const E1 = { address: '203.0.113.1', port: 4000 }
const E2 = { address: '203.0.113.2', port: 5000 }
const E3 = { address: '203.0.113.3', port: 6000 }
const LOCAL = [{ address: '192.168.1.10', port: 4000 }]

describe('server/registry Registry', () => {
  it('registers a name with its key and endpoints, found by name and by endpoint', () => {
    const registry = new Registry(TTL, 10)
    const result = registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    expect(result).to.deep.equal({
      ok: true,
      registration: { name: 'alice', key: 'KEY-A', endpoint: E1, local: LOCAL, expiresAt: TTL },
    })
    expect(registry.get('alice', 10)?.endpoint).to.deep.equal(E1)
    expect(registry.at(E1, 10)?.name).to.equal('alice')
    expect(registry.at(E2, 10)).to.equal(undefined)
    expect(registry.size).to.equal(1)
  })

  it('lets the same key re-register from a new endpoint (a restarted client), replacing the old endpoint', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    const again = registry.register('alice', 'KEY-A', E2, [], 100)
    expect(again.ok).to.equal(true)
    expect(registry.get('alice', 200)).to.deep.include({ endpoint: E2, local: [], expiresAt: 100 + TTL })
    expect(registry.at(E1, 200)).to.equal(undefined)
    expect(registry.at(E2, 200)?.name).to.equal('alice')
    expect(registry.size).to.equal(1)
  })

  it('refuses a different key for a name that is online, and leaves the holder alone', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    const taken = registry.register('alice', 'KEY-M', E2, [], TTL - 1)
    expect(taken).to.deep.equal({
      ok: false,
      code: 'name_taken',
      message: 'the name "alice" is online under another key',
    })
    expect(registry.get('alice', TTL - 1)).to.deep.include({ key: 'KEY-A', endpoint: E1 })
    expect(registry.at(E2, TTL - 1)).to.equal(undefined)
  })

  it('frees the name once its registration expires, even before a sweep', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    expect(registry.get('alice', TTL)).to.equal(undefined)
    const result = registry.register('alice', 'KEY-B', E2, [], TTL)
    expect(result.ok).to.equal(true)
    expect(registry.get('alice', TTL + 1)).to.deep.include({ key: 'KEY-B', endpoint: E2 })
    expect(registry.at(E1, TTL + 1)).to.equal(undefined)
  })

  it('keeps a registration alive while its endpoint touches it', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    expect(registry.touch(E1, 900)?.expiresAt).to.equal(900 + TTL)
    expect(registry.get('alice', 1500)?.name).to.equal('alice')
    expect(registry.touch(E2, 1500)).to.equal(undefined)
    // Once expired, a touch does not bring it back.
    expect(registry.touch(E1, 900 + TTL)).to.equal(undefined)
    expect(registry.get('alice', 900 + TTL)).to.equal(undefined)
  })

  it('holds one registration per endpoint: a new name from the same endpoint drops the old one', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    registry.register('alice2', 'KEY-A', E1, LOCAL, 10)
    expect(registry.get('alice', 20)).to.equal(undefined)
    expect(registry.at(E1, 20)?.name).to.equal('alice2')
    expect(registry.names(20)).to.deep.equal(['alice2'])
  })

  it('does not drop a client that has moved away when another registers at its old endpoint', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'KEY-A', E1, LOCAL, 0)
    registry.register('alice', 'KEY-A', E2, LOCAL, 10)
    registry.register('bob', 'KEY-B', E1, LOCAL, 20)
    expect(registry.names(30)).to.deep.equal(['alice', 'bob'])
    expect(registry.at(E2, 30)?.name).to.equal('alice')
    expect(registry.at(E1, 30)?.name).to.equal('bob')
  })

  it('when full, drops the registration refreshed least recently, and lets a registered name refresh', () => {
    const registry = new Registry(TTL, 2)
    expect(registry.register('alice', 'KEY-A', E1, [], 0).ok).to.equal(true)
    expect(registry.register('bob', 'KEY-B', E2, [], 0).ok).to.equal(true)
    registry.touch(E1, 5)
    const carol = registry.register('carol', 'KEY-C', E3, [], 10)
    expect(carol.ok && carol.evicted?.name).to.equal('bob')
    expect(registry.names(11)).to.deep.equal(['alice', 'carol'])
    expect(registry.register('alice', 'KEY-A', E1, [], 20)).to.not.have.property('evicted')
    expect(registry.size).to.equal(2)
  })

  it('counts per address and per prefix (/24, /48), and frees the count when a registration goes', () => {
    expect(addressPrefix('203.0.113.77')).to.equal('203.0.113.0/24')
    expect(addressPrefix('::ffff:203.0.113.77')).to.equal('203.0.113.0/24')
    expect(addressPrefix('2001:db8:1:2::5')).to.equal('2001:db8:1::/48')
    expect(addressPrefix('2001:0db8:0001:ffff:1:2:3:4')).to.equal('2001:db8:1::/48')
    const registry = new Registry(TTL, 100, { perAddress: 1, perPrefix: 2 })
    expect(registry.register('alice', 'A', E1, [], 0).ok).to.equal(true)
    expect(registry.register('bob', 'B', { ...E1, port: 1 }, [], 0)).to.deep.include({ ok: false, code: 'over_quota' })
    expect(registry.register('bob', 'B', E2, [], 0).ok).to.equal(true)
    expect(registry.register('carol', 'C', E3, [], 0)).to.deep.include({ ok: false, code: 'over_quota' }) // 203.0.113.0/24 is full
    registry.remove('alice')
    expect(registry.register('carol', 'C', E3, [], 0).ok).to.equal(true)
    expect(registry.register('dave', 'D', { address: '198.51.100.1', port: 1 }, [], 0).ok).to.equal(true)
  })

  it('counts only live registrations against the limit', () => {
    const registry = new Registry(TTL, 2)
    registry.register('alice', 'KEY-A', E1, [], 0)
    registry.register('bob', 'KEY-B', E2, [], 0)
    // Both expired; no sweep has run yet.
    expect(registry.register('carol', 'KEY-C', E3, [], TTL).ok).to.equal(true)
    expect(registry.names(TTL)).to.deep.equal(['carol'])
  })

  it('lists names sorted, leaving out the expired', () => {
    const registry = new Registry(TTL, 10)
    registry.register('mallory', 'K1', E1, [], 0)
    registry.register('bob', 'K2', E2, [], 500)
    registry.register('alice', 'K3', E3, [], 500)
    expect(registry.names(100)).to.deep.equal(['alice', 'bob', 'mallory'])
    expect(registry.names(TTL)).to.deep.equal(['alice', 'bob'])
    expect(registry.names(500 + TTL)).to.deep.equal([])
  })

  it('expire drops what stopped refreshing and returns those names', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'K1', E1, [], 0)
    registry.register('bob', 'K2', E2, [], 500)
    expect(registry.expire(TTL)).to.deep.equal(['alice'])
    expect(registry.size).to.equal(1)
    expect(registry.at(E1, 0)).to.equal(undefined)
    expect(registry.expire(TTL)).to.deep.equal([])
  })

  it('remove drops the name and its endpoint, and ignores an unknown name', () => {
    const registry = new Registry(TTL, 10)
    registry.register('alice', 'K1', E1, [], 0)
    registry.remove('nobody')
    registry.remove('alice')
    expect(registry.size).to.equal(0)
    expect(registry.at(E1, 1)).to.equal(undefined)
    expect(registry.register('bob', 'K2', E1, [], 1).ok).to.equal(true)
  })
})
