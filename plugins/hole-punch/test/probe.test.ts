// Probes and the send budget on their own, on a clock the test moves: a MAC verifies only under its token and for its
// exact fields; an address that never answered gets a bounded number of punches and birthday probes however many
// peers (a hostile server may invent them) point at it; once it answers, it is free.
import { expect } from 'chai'
import { makeProbe, parseProbe, probeToken } from '../../../protocol'
import { inOwnSubnet, SendBudget } from '../send-policy'

const TOKEN = 'ab'.repeat(16)
const OTHER = 'cd'.repeat(16)

describe('hole-punch probes', () => {
  it('verify only under their token and for every field as sent', () => {
    const probe = makeProbe(TOKEN, 'keepalive', 'bob', 'alice', 7)
    expect(probeToken(probe, [OTHER, TOKEN])).to.equal(TOKEN)
    expect(probeToken(probe, [OTHER])).to.equal(undefined)
    for (const changed of [{ t: 'bye' }, { from: 'mallory' }, { to: 'carol' }, { seq: 8 }] as const) {
      expect(probeToken({ ...probe, ...changed }, [TOKEN]), JSON.stringify(changed)).to.equal(undefined)
    }
    expect(JSON.stringify(probe)).to.not.include(TOKEN)
    expect(parseProbe({ ...probe })).to.deep.equal(probe)
    expect(parseProbe({ t: 'punch', from: 'bob', to: 'alice', token: TOKEN }), 'the old form').to.equal(undefined)
  })

  it('take local candidates only from our own subnets, never loopback', () => {
    const interfaces = {
      lo: [
        {
          address: '127.0.0.1',
          netmask: '255.0.0.0',
          family: 'IPv4' as const,
          mac: '',
          internal: true,
          cidr: '127.0.0.1/8',
        },
      ],
      eth0: [
        {
          address: '192.168.1.20',
          netmask: '255.255.255.0',
          family: 'IPv4' as const,
          mac: '',
          internal: false,
          cidr: '192.168.1.20/24',
        },
      ],
    }
    expect(inOwnSubnet('192.168.1.77', interfaces)).to.equal(true)
    expect(inOwnSubnet('192.168.2.77', interfaces)).to.equal(false)
    expect(inOwnSubnet('127.0.0.1', interfaces)).to.equal(false)
    expect(inOwnSubnet('not an address', interfaces)).to.equal(false)
  })

  it('bound what goes to an address that never answered, per window, and free one that answered', () => {
    let now = 0
    const budget = new SendBudget(undefined, () => now)
    let punches = 0
    for (let i = 0; i < 1000; i++) if (budget.take('198.51.100.7', 'punch')) punches++
    expect(punches).to.equal(24)
    let probes = 0
    // A hostile server introduces 100 "symmetric" peers at one victim: birthday probes to it share one budget.
    for (let peer = 0; peer < 100; peer++)
      for (let i = 0; i < 2500; i++) if (budget.take('198.51.100.7', 'probe')) probes++
    expect(probes).to.equal(3000)
    now += 10_000
    expect(budget.take('198.51.100.7', 'punch'), 'a new punch window').to.equal(true)
    expect(budget.take('198.51.100.7', 'probe'), 'the probe window is 5 minutes').to.equal(false)
    now += 300_000
    expect(budget.take('198.51.100.7', 'probe')).to.equal(true)
    budget.answer('198.51.100.8')
    let free = 0
    for (let i = 0; i < 5000; i++) if (budget.take('198.51.100.8', 'probe')) free++
    expect(free).to.equal(5000)
  })
})
