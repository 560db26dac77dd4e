// Scenarios 1-3: NATs that map independently of the destination, the same LAN, and a public host: always direct.
import { expect } from 'chai'
import { directPathLog, exchange, pathsTo, record, useNatWorld } from './world'

describe('NAT scenarios: easy NATs go direct (real clients in a namespace lab)', function () {
  this.timeout(60_000)
  const world = useNatWorld(
    {
      nats: [{ name: 'home', type: 'eim' }, { name: 'office', type: 'eim' }],
      hosts: [{ name: 'srv' }, { name: 'pub' }, { name: 'a', behind: 'home' }, { name: 'a2', behind: 'home' }, { name: 'b', behind: 'office' }],
    },
    { host: 'srv' },
  )
  const lab = () => world().lab

  it('1. both behind separate endpoint-independent NATs: direct, through both NATs\' public endpoints', async () => {
    const [alice, bob] = await Promise.all([world().client('a', 'alice', 'alice'), world().client('b', 'bob', 'bob')])
    const result = await exchange('1. EIM ↔ EIM', alice, bob)
    record(result)
    expect(pathsTo(alice, 'bob')).to.deep.equal(['direct'])
    expect(pathsTo(bob, 'alice')).to.deep.equal(['direct'])
    expect((await directPathLog(alice, 'bob')).via.startsWith(`${lab().nat('office').wanIp}:`)).to.equal(true)
    expect((await directPathLog(bob, 'alice')).via.startsWith(`${lab().nat('home').wanIp}:`)).to.equal(true)
    expect(result.firstMessageMs).to.be.below(1000)
  })

  it('2. both behind the same NAT: direct over their LAN endpoints, no hairpin needed', async () => {
    const [alice, carol] = await Promise.all([world().client('a', 'alice', 'alice'), world().client('a2', 'carol', 'carol')])
    const result = await exchange('2. same NAT (LAN)', alice, carol)
    record(result)
    expect(pathsTo(alice, 'carol')).to.deep.equal(['direct'])
    expect(pathsTo(carol, 'alice')).to.deep.equal(['direct'])
    expect((await directPathLog(alice, 'carol')).via.startsWith(`${lab().host('a2').ip}:`)).to.equal(true)
    expect((await directPathLog(carol, 'alice')).via.startsWith(`${lab().host('a').ip}:`)).to.equal(true)
    expect(result.firstMessageMs).to.be.below(1000)
  })

  it('3. one public host, one behind a NAT: direct', async () => {
    const [dave, bob] = await Promise.all([world().client('pub', 'dave', 'dave'), world().client('b', 'bob', 'bob')])
    const result = await exchange('3. public ↔ EIM', bob, dave)
    record(result)
    expect(pathsTo(bob, 'dave')).to.deep.equal(['direct'])
    expect(pathsTo(dave, 'bob')).to.deep.equal(['direct'])
    expect((await directPathLog(bob, 'dave')).via.startsWith(`${lab().host('pub').ip}:`)).to.equal(true)
    expect(result.firstMessageMs).to.be.below(1000)
  })
})
