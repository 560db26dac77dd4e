// Scenarios 6-9: a path outlives the NAT's idle timeout, recovers from a NAT reboot and a new public port, clients
// re-register by themselves after the rendezvous server restarts, and a cut direct path falls back to the relay and back.
import { expect } from 'chai'
import { pollUntil, type LabNat } from '../lab/lab'
import type { HeadlessClient } from '../support/processes'
import { exchange, pathsTo, record, timedMessage, useNatWorld } from './world'

/** Short enough to make the scenarios quick, far enough apart that keepalive (1 s) beats the NAT timeout (3 s). */
const NAT_TIMEOUT_S = 3
const KEEPALIVE_MS = 1_000
const SERVER_PORT = 7000

describe('NAT scenarios: idle paths, NAT reboots, new ports and server restarts (real clients in a namespace lab)', function () {
  this.timeout(90_000)
  const world = useNatWorld(
    {
      nats: [
        { name: 'home', type: 'eim' },
        { name: 'office', type: 'eim' },
      ],
      hosts: [{ name: 'srv' }, { name: 'a', behind: 'home' }, { name: 'b', behind: 'office' }],
    },
    { host: 'srv', port: SERVER_PORT },
    // Before any traffic: the kernel fixes a mapping's timeout when a packet refreshes it.
    (lab) => Promise.all(lab.nats.map((nat) => nat.setUdpTimeout(NAT_TIMEOUT_S))).then(() => undefined),
  )
  const home = () => world().lab.nat('home')

  const pair = () =>
    Promise.all([
      world().client('a', 'alice', 'alice', { keepaliveMs: KEEPALIVE_MS }),
      world().client('b', 'bob', 'bob', { keepaliveMs: KEEPALIVE_MS }),
    ])

  /** The mapping `nat` holds from a host behind it to `remote`, if the peer has answered through it. */
  const repliedMapping = async (nat: LabNat, remote: string) =>
    (await nat.mappings()).find((m) => m.replied && `${m.remote.address}:${m.remote.port}` === remote)

  /** bob's public endpoint as alice's path uses it, from alice's log. */
  const publicOf = async (client: HeadlessClient, peer: string) => {
    const line = await client.waitForLog(
      (l) => l.includes(`direct path to ${peer} {`),
      `${client.name}'s path to ${peer}`,
    )
    return (JSON.parse(line.slice(line.indexOf('{'))) as { via: string }).via
  }

  it('6. idle for longer than the NAT mapping timeout: keepalive holds the path, messages go both ways after', async () => {
    const [alice, bob] = await pair()
    record(await exchange('6. idle > NAT timeout', alice, bob))
    const bobPublic = await publicOf(alice, 'bob')
    // The short timeout applies to the path's mapping: without traffic it would be gone in NAT_TIMEOUT_S.
    const mapping = await repliedMapping(home(), bobPublic)
    expect(mapping?.expiresInSec).to.be.at.most(NAT_TIMEOUT_S)
    // The scenario is idleness itself: there is no event to await, only time for an unrefreshed mapping to expire twice.
    await new Promise((resolve) => setTimeout(resolve, NAT_TIMEOUT_S * 2_000 + 500))
    const after = await exchange('6. idle > NAT timeout (after idling)', bob, alice, 2_000)
    record(after)
    expect(pathsTo(alice, 'bob')).to.deep.equal(['direct'])
    expect(pathsTo(bob, 'alice')).to.deep.equal(['direct'])
    expect([...alice.lines, ...bob.lines].filter((e) => e.type === 'lost')).to.deep.equal([])
  })

  it('7a. the NAT reboots (conntrack flushed): the path recovers by itself', async () => {
    const [alice, bob] = await pair()
    await exchange('7a. before the reboot', alice, bob)
    const bobPublic = await publicOf(alice, 'bob')
    const rebooted = Date.now()
    await home().flush()
    // Kernel state, no event: the mapping is back once alice's keepalive went out and bob's came back through it.
    await pollUntil(
      "alice's mapping to bob is back and answered",
      async () => Boolean(await repliedMapping(home(), bobPublic)),
      { timeoutMs: 10_000 },
    )
    const recoveredMs = Date.now() - rebooted
    const result = await exchange('7a. NAT reboot', bob, alice, 2_000)
    record({ ...result, note: `path back ${recoveredMs} ms after the flush` })
    expect(pathsTo(alice, 'bob')).to.deep.equal(['direct'])
    expect([...alice.lines, ...bob.lines].filter((e) => e.type === 'lost')).to.deep.equal([])
  })

  it("7b. a client's public port changes: a fresh introduction moves the path by itself", async () => {
    const [alice, bob] = await pair()
    await exchange('7b. before the port change', alice, bob)
    const bobPublic = await publicOf(alice, 'bob')
    const moved = Date.now()
    await home().setPortRange(20_000, 20_999)
    try {
      await pollUntil(
        'alice talks to bob from a new public port, and bob answers',
        async () => {
          const mapping = await repliedMapping(home(), bobPublic)
          return Boolean(mapping && mapping.public.port >= 20_000 && mapping.public.port <= 20_999)
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      )
      const recoveredMs = Date.now() - moved
      const result = await exchange('7b. new public port', bob, alice, 2_000)
      // Recovery races the 3.5-interval loss timeout: say whether a `lost` came first (the path still comes back by itself).
      const lost = [...alice.lines, ...bob.lines].filter((e) => e.type === 'lost').length
      record({
        ...result,
        note: `path moved ${recoveredMs} ms after the port change${lost ? `, after ${lost} lost event(s)` : ', no lost event'}`,
      })
      expect(pathsTo(bob, 'alice').at(-1)).to.equal('direct')
      expect(pathsTo(alice, 'bob').at(-1)).to.equal('direct')
    } finally {
      await home().setPortRange()
    }
  })

  it('9. a firewall cuts the direct path mid-conversation: the relay carries on, and the path goes direct once it is lifted', async () => {
    // As users run udsu: with reliable delivery, so a message sent into the dead path is not lost but resent.
    const options = { keepaliveMs: KEEPALIVE_MS, relayAfterMs: 1_000, upgradeMs: 2_000 }
    const [alice, bob] = await Promise.all([
      world().client('a', 'alice', 'alice', options, { reliable: true }),
      world().client('b', 'bob', 'bob', options, { reliable: true }),
    ])
    await exchange('9. before the cut', alice, bob)
    expect(pathsTo(alice, 'bob')).to.deep.equal(['direct'])
    const office = world().lab.nat('office').wanIp
    const since = new Map([alice, bob].map((c) => [c, c.lines.length]))
    const path = (c: HeadlessClient, peer: string, kind: string, what: string, timeoutMs: number) =>
      c.waitFor(
        (e) => e.type === 'connected' && e.peer === peer && e.path === kind,
        `${c.name}: ${what}`,
        timeoutMs,
        since.get(c),
      )

    await home().block(office)
    let relayedMs: number
    try {
      // Sent at once, into the direct path that no longer carries anything: it arrives once the relay carries it.
      relayedMs = await timedMessage(alice, bob, 30_000)
      await path(alice, 'bob', 'relay', 'the relay to bob', 1_000)
      await path(bob, 'alice', 'relay', 'the relay to alice', 10_000)
      expect(await timedMessage(bob, alice, 5_000)).to.be.below(5_000)
    } finally {
      // From here on: a punch may get through while the rules are being removed.
      for (const c of [alice, bob]) since.set(c, c.lines.length)
      await home().block(office, false)
    }
    const lifted = Date.now()
    await Promise.all([
      path(alice, 'bob', 'direct', 'direct again', 20_000),
      path(bob, 'alice', 'direct', 'direct again', 20_000),
    ])
    const directMs = Date.now() - lifted
    const after = await exchange('9. after the cut is lifted', alice, bob, 2_000)
    record({
      scenario: '9. direct path cut',
      path: 'direct → relay → direct',
      firstMessageMs: relayedMs,
      note: `the message sent into the cut arrived by relay; direct again ${directMs} ms after the cut was lifted`,
    })
    expect(after.path).to.equal('direct')
    expect(
      [...alice.lines, ...bob.lines].filter((e) => e.type === 'message' && e.from !== undefined).length,
    ).to.be.at.least(4)
  })

  it('8. the rendezvous server restarts: clients re-register by themselves and still connect', async () => {
    const [alice, bob] = await pair()
    const since = new Map([alice, bob].map((c) => [c, c.lines.length]))
    const serverEvent = (c: HeadlessClient, online: boolean, what: string) =>
      c.waitFor((e) => e.type === 'server' && e.online === online, `${c.name} ${what}`, 15_000, since.get(c))
    world().server!.kill()
    await world().server!.exited
    await Promise.all([alice, bob].map((c) => serverEvent(c, false, 'to notice the server is gone')))
    await world().startServer('srv', { port: SERVER_PORT })
    await Promise.all([alice, bob].map((c) => serverEvent(c, true, 'to register again')))
    const result = await exchange('8. server restart', alice, bob)
    record(result)
    expect(pathsTo(alice, 'bob')).to.deep.equal(['direct'])
    expect(result.firstMessageMs).to.be.below(1_000)
    expect(await timedMessage(bob, alice)).to.be.below(1_000)
  })
})
