// Scenarios 1-3: NATs that map independently of the destination, the same LAN, and a public host: always direct.
// Scenario 10: such a direct path dies while in use, and the relay takes over within seconds.
import { expect } from 'chai'
import { directPathLog, exchange, pathsTo, record, timedMessage, useNatWorld } from './world'

describe('NAT scenarios: easy NATs go direct (real clients in a namespace lab)', function () {
  this.timeout(60_000)
  const world = useNatWorld(
    {
      nats: [
        { name: 'home', type: 'eim' },
        { name: 'office', type: 'eim' },
      ],
      hosts: [
        { name: 'srv' },
        { name: 'pub' },
        { name: 'a', behind: 'home' },
        { name: 'a2', behind: 'home' },
        { name: 'b', behind: 'office' },
      ],
    },
    { host: 'srv' },
  )
  const lab = () => world().lab

  it("1. both behind separate endpoint-independent NATs: direct, through both NATs' public endpoints", async () => {
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
    const [alice, carol] = await Promise.all([
      world().client('a', 'alice', 'alice'),
      world().client('a2', 'carol', 'carol'),
    ])
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

  it('10. a direct path that dies in use is noticed in seconds, not after 3.5 keepalives of 15 s: the relay carries on', async () => {
    const options = { relayAfterMs: 1_000 } // the default keepalive, 15 s
    const [alice, bob] = await Promise.all([
      world().client('a', 'alice', 'alice', options, { reliable: true }),
      world().client('b', 'bob', 'bob', options, { reliable: true }),
    ])
    await exchange('10. before the cut', alice, bob)
    const office = lab().nat('office').wanIp
    await lab().nat('home').block(office)
    try {
      // Sent into the cut: the reliable link resends it, and sending on a path silent for 3 s makes hole-punch check it.
      const relayedMs = await timedMessage(alice, bob, 20_000)
      record({
        scenario: '10. path cut, keepalive 15 s',
        path: pathsTo(alice, 'bob').join(' → '),
        firstMessageMs: relayedMs,
        note: 'the message sent into the cut, found dead by the path check',
      })
      await alice.waitForLog((l) => l.includes('direct path to bob stopped answering'), 'alice to find the path dead')
      expect(pathsTo(alice, 'bob')).to.deep.equal(['direct', 'relay'])
      expect(relayedMs).to.be.below(15_000) // without the check: after 3.5 keepalives, 52 s
      expect(await timedMessage(bob, alice, 15_000)).to.be.below(15_000)
    } finally {
      await lab().nat('home').block(office, false)
    }
  })
})
