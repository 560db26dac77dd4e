// The path state machine alone, on a virtual clock and a virtual network: no sockets, no timers, no root.
import { expect } from 'chai'
import type { Endpoint } from '../../../core/index'
import { MAX_PEER_STATES, PathMachine, type PathEvent, type PathOptions } from '../paths'
import { makeProbe, type Probe, type ProbeType } from '../../../protocol'

const OPTIONS: PathOptions = {
  keepaliveMs: 15_000,
  punchTimeoutMs: 10_000,
  relay: true,
  relayAfterMs: 3_000,
  upgradeMs: 30_000,
  birthdaySockets: 256,
  birthdayRate: 250,
}
const TOKEN = 'aa'.repeat(16)

/** What one machine asked for, in order. */
interface Side {
  name: string
  at: Endpoint
  machine: PathMachine<string>
  probes: Array<{ to: Endpoint; probe: Probe }>
  portProbes: number
  events: Array<PathEvent<string>>
  reintroduced: string[]
  relayAsked: string[]
}

function world(options: PathOptions = OPTIONS) {
  let now = 1_000_000
  let seq = 0
  const clock = () => now
  const sides: Side[] = []
  function side(name: string, at: Endpoint): Side {
    const s = { name, at, probes: [], portProbes: 0, events: [], reintroduced: [], relayAsked: [] } as unknown as Side
    s.machine = new PathMachine<string>(
      name,
      'main',
      options,
      {
        sendProbe: (_via, to, peer, token, t: ProbeType) =>
          s.probes.push({ to, probe: makeProbe(token, t, name, peer, seq++) }),
        sendPortProbes: (_peer, _attempt, _token, _address, ports) => void (s.portProbes += ports.length),
        reintroduce: (peer) => s.reintroduced.push(peer),
        askIntro: () => undefined,
        askRelay: (peer) => s.relayAsked.push(peer),
        openAux: () => undefined,
        closeAux: () => undefined,
        path: (event) => s.events.push(event),
        deadline: () => undefined,
        log: () => undefined,
      },
      clock,
    )
    s.machine.setRegistered(true, true, true)
    sides.push(s)
    return s
  }
  /** Delivers every probe sent so far to the side at its destination (`drop` says which to lose). */
  function deliver(drop: (from: Side, to: Endpoint) => boolean = () => false) {
    for (let moved = true; moved;) {
      moved = false
      for (const from of sides) {
        for (const { to, probe } of from.probes.splice(0)) {
          moved = true
          const target = sides.find((s) => s.at.address === to.address && s.at.port === to.port)
          if (target && !drop(from, to)) target.machine.probe(probe, from.at, 'main')
        }
      }
    }
  }
  /** Advances the virtual clock step by step to `ms` later, running every deadline on the way. */
  function advance(ms: number, between: () => void = () => undefined) {
    const end = now + ms
    for (;;) {
      const next = Math.min(end, ...sides.map((s) => s.machine.nextDeadline() ?? Infinity))
      now = next
      for (const s of sides) s.machine.tick()
      between()
      if (now >= end) return
    }
  }
  const introduce = (a: Side, b: Side, nat: 'eim' | 'symmetric' = 'eim') =>
    a.machine.introduce({ name: b.name, token: TOKEN, public: b.at, candidates: [b.at], nat, instance: 'i' })
  return { side, deliver, advance, introduce, now: () => now }
}

/** alice and bob introduced to each other on one LAN, their punches delivered: a direct path both ways. */
function directPath() {
  const w = world()
  const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
  const bob = w.side('bob', { address: '10.0.0.2', port: 2000 })
  w.introduce(alice, bob)
  w.introduce(bob, alice)
  w.advance(0)
  w.deliver()
  return { w, alice, bob }
}

describe('hole-punch paths (pure, virtual clock)', () => {
  it('opens a direct path when both sides punch, and answers whoever waits', async () => {
    const w = world()
    const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
    const bob = w.side('bob', { address: '10.0.0.2', port: 2000 })
    w.introduce(alice, bob)
    w.introduce(bob, alice)
    const waiting = alice.machine.waitForPath('bob')
    w.advance(0)
    w.deliver()
    expect(await waiting).to.equal('direct')
    expect(alice.machine.route('bob')).to.deep.include({ t: 'direct', endpoint: bob.at })
    expect(bob.events.filter((e) => e.t === 'direct')).to.have.length(1)
    // The winner is known: the rest of the punch schedule is cancelled; nothing is scheduled until a check.
    expect(alice.machine.scheduled).to.equal(0)
  })

  it('asks for a new introduction after 1 s of silence, then the relay at relayAfterMs, and gives up at punchTimeoutMs', async () => {
    const w = world()
    const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
    const bob = w.side('bob', { address: '10.0.0.2', port: 2000 })
    w.introduce(alice, bob)
    const waiting = alice.machine.waitForPath('bob')
    w.advance(999)
    expect(alice.reintroduced).to.deep.equal([])
    w.advance(1)
    expect(alice.reintroduced).to.deep.equal(['bob'])
    w.advance(1_999)
    expect(alice.relayAsked).to.deep.equal([])
    w.advance(1)
    expect(alice.relayAsked).to.deep.equal(['bob'])
    alice.machine.relayAnswer('bob', 'refused')
    w.advance(7_000)
    expect(await waiting).to.equal(undefined)
    expect(alice.machine.scheduled).to.equal(0)
    // Every punch went to bob's only candidate, within the budget of an address that never answered.
    expect(alice.probes.length).to.be.within(1, 24)
  })

  it('keeps a path with keepalives and loses it after 3.5 silent intervals, asking for a new introduction at 2', () => {
    const { w, alice } = directPath()
    for (let i = 1; i <= 4; i++) {
      w.advance(15_000)
      alice.machine.keepalive()
      alice.probes.splice(0) // bob is gone: nothing answers
    }
    expect(alice.reintroduced).to.include('bob')
    expect(alice.events.at(-1)).to.deep.equal({ t: 'lost', name: 'bob', reason: 'timed out', online: true })
    expect(alice.machine.route('bob')).to.equal(undefined)
  })

  it('checks a path that went silent while in use: six unanswered punches lose it', () => {
    const { w, alice } = directPath()
    w.advance(3_001)
    alice.probes.splice(0)
    expect(alice.machine.route('bob')?.t).to.equal('direct')
    w.advance(2_999)
    expect(alice.machine.route('bob')?.t).to.equal('direct')
    w.advance(1)
    expect(alice.events.at(-1)).to.include({ t: 'lost', reason: 'the path stopped answering' })
    expect(alice.probes.filter((p) => p.probe.t === 'punch')).to.have.length(6)
  })

  it('ignores a replayed probe from another address, and a probe under an unknown token', () => {
    const w = world()
    const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
    const bob = w.side('bob', { address: '10.0.0.2', port: 2000 })
    w.introduce(alice, bob)
    const punch = makeProbe(TOKEN, 'punch', 'bob', 'alice', 5)
    expect(alice.machine.probe(punch, bob.at, 'main')).to.equal(true)
    expect(alice.machine.probe(punch, { address: '6.6.6.6', port: 6 }, 'main')).to.equal(false)
    expect(alice.machine.probe(makeProbe('bb'.repeat(16), 'bye', 'bob', 'alice', 9), bob.at, 'main')).to.equal(false)
    expect(alice.machine.route('bob')).to.deep.include({ endpoint: bob.at })
  })

  it("probes a symmetric peer's random ports within the birthday budget of its address", () => {
    const w = world({ ...OPTIONS, birthdayRate: 1_000, punchTimeoutMs: 60_000 })
    const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
    w.introduce(alice, { name: 'carol', at: { address: '10.0.0.3', port: 3000 } } as Side, 'symmetric')
    w.advance(60_000)
    expect(alice.portProbes).to.equal(3_000)
    expect(alice.machine.scheduled).to.equal(0)
  })

  it('holds at most MAX_PEER_STATES names however many are introduced, and a forgotten name takes its steps along', () => {
    const w = world()
    const alice = w.side('alice', { address: '10.0.0.1', port: 1000 })
    for (let i = 0; i < MAX_PEER_STATES + 1_000; i++)
      w.introduce(alice, { name: `x${i}`, at: { address: '10.9.0.1', port: 1 + i } } as Side)
    expect(alice.machine.size).to.equal(MAX_PEER_STATES)
    const perName = alice.machine.scheduled / MAX_PEER_STATES
    expect(perName).to.be.below(60)
    alice.machine.forget(`x${MAX_PEER_STATES + 999}`)
    expect(alice.machine.has(`x${MAX_PEER_STATES + 999}`)).to.equal(false)
    expect(alice.machine.scheduled).to.equal(Math.round(perName * (MAX_PEER_STATES - 1)))
    w.advance(10_000)
    expect(alice.machine.scheduled).to.equal(0)
  })
})
