// A hostile server that introduces names nobody asked for (issue 11): thousands of invented peers cost the client a
// bounded table and one timer, and invented "symmetric" peers aimed at one victim address get it at most the send budget.
import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import * as dgram from 'node:dgram'
import { publicPem } from '../../core/test/support'
import type { Endpoint } from '../../core/types'
import { HostileServer } from '../support/hostile-server'
import { makeClient, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

const plugins = (holePunch: Record<string, unknown> = {}) => [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false, ...holePunch } },
  { resolve: 'rsa', options: {} },
  { resolve: 'reliable', options: {} },
]

/** A UDP socket that only counts what reaches it; on 127.0.0.2, an address no peer answers from (127.0.0.1 is bob's). */
async function sink(): Promise<{ endpoint: Endpoint; received: () => number; close: () => void }> {
  const socket = dgram.createSocket('udp4')
  let received = 0
  socket.on('message', () => received++)
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.2', resolve))
  return {
    endpoint: { address: '127.0.0.2', port: socket.address().port },
    received: () => received,
    close: () => socket.close(),
  }
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('a hostile server introducing names nobody asked for', function () {
  this.timeout(90_000)
  const stops: Array<() => unknown> = []
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop()
  })
  after(cleanupTemp)

  async function started(client: TestClient): Promise<TestClient> {
    stops.push(() => client.client.stop())
    await client.client.start()
    return client
  }
  const holePunch = (client: TestClient) => client.client.container.resolve('services').get('hole-punch')!

  /** Sends `count` introductions of invented names to `recipient`, paced so the loopback socket keeps them all. */
  async function flood(
    liar: HostileServer,
    recipient: TestClient,
    count: number,
    intro: (i: number) => Parameters<HostileServer['introduce']>[1],
  ) {
    let discovered = 0
    recipient.client.hooks.peerDiscovered.tap(
      'test-count',
      ({ name }) => void (name.startsWith('ghost') && discovered++),
    )
    for (let i = 0; i < count; i++) {
      expect(liar.introduce(recipient.client.config.name!, intro(i))).to.equal(true)
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    // Every introduction that arrived was taken (the hook fires for each); wait until they stop arriving.
    for (let last = -1; last !== discovered;) {
      last = discovered
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    return discovered
  }

  it('3,000 invented names: the table and the timers stay bounded, and the real conversation goes on', async () => {
    const liar = new HostileServer((_recipient, peer) => peer)
    const address = await liar.listen()
    stops.push(() => liar.close())
    const blackhole = await sink()
    stops.push(blackhole.close)
    const alice = await started(makeClient('alice', address, { plugins: plugins() }))
    const bob = await started(makeClient('bob', address, { plugins: plugins() }))
    await alice.client.send('bob', 'before the flood')
    await bob.message('before the flood')
    const timersBefore = timeouts()
    const floodStarted = Date.now()

    const introduced = await flood(liar, alice, 3_000, (i) => ({
      name: `ghost${i}`,
      key: publicPem('carol'),
      public: blackhole.endpoint,
      local: [],
      nat: 'eim',
    }))
    expect(introduced, 'introductions taken').to.be.above(2_000)
    const stats = holePunch(alice).stats()
    process.stdout.write(
      `      ${introduced} names introduced: ${stats.names} held, ${stats.scheduled} steps scheduled, ${timeouts() - timersBefore} more timers in the process\n`,
    )
    // The peer directory keeps 1,024 and hole-punch drops what it forgets (with the steps scheduled for it).
    expect(stats.names).to.be.at.most(1_024)
    expect(holePunch(alice).holds('ghost0'), 'the first ghost, forgotten by the directory').to.equal(false)
    expect(stats.scheduled).to.be.at.most(stats.names * 60)
    // One timer for every path step, not one per name and punch: a handful more timers, not tens of thousands.
    expect(timeouts() - timersBefore).to.be.below(100)
    // Their punches share the budget of the one address they all point at: 24 per 10 s window.
    expect(blackhole.received()).to.be.at.most(24 * (Math.floor((Date.now() - floodStarted) / 10_000) + 1))

    await alice.client.send('bob', 'during the flood')
    await bob.message('during the flood')
    await bob.client.send('alice', 'still here')
    await alice.message('still here')
  })

  it('invented "symmetric" peers aimed at one victim address get it at most the send budget', async function () {
    const why = iptablesUnavailable()
    if (why) {
      if (process.env.CI) throw new Error(why)
      return this.skip()
    }
    // A loopback address of its own, so that the counter sees only this test's datagrams, on any port.
    const victim = `127.77.${(process.pid >> 8) & 255}.${process.pid & 255}`
    const rule = [
      'OUTPUT',
      '-d',
      `${victim}/32`,
      '-p',
      'udp',
      '-m',
      'comment',
      '--comment',
      `udsu-victim-${process.pid}`,
    ]
    execFileSync('iptables', ['-I', ...rule])
    stops.push(() => execFileSync('iptables', ['-D', ...rule]))
    const liar = new HostileServer((_recipient, peer) => peer)
    const address = await liar.listen()
    stops.push(() => liar.close())
    // The default rate (250 probes a second) over a 3 s attempt: 750 random ports per invented peer.
    const alice = await started(makeClient('alice', address, { plugins: plugins({ punchTimeoutMs: 3_000 }) }))
    const started_ = Date.now()
    const introduced = await flood(liar, alice, 200, (i) => ({
      name: `ghost${i}`,
      key: publicPem('carol'),
      public: { address: victim, port: 40_000 + i },
      local: [],
      nat: 'symmetric',
    }))
    expect(introduced).to.equal(200)
    // Every attempt has ended once nothing is scheduled any more.
    while (holePunch(alice).stats().scheduled > 0) await new Promise((resolve) => setTimeout(resolve, 200))
    const { packets, bytes } = counted(victim)
    process.stdout.write(
      `      200 invented symmetric peers at one victim, ${Date.now() - started_} ms: ${packets} datagrams (${bytes} bytes) reached it\n`,
    )
    // 3,000 birthday probes per 5 minutes and 24 punches per 10 s to an address that never answered.
    expect(packets).to.be.at.most(3_000 + 24)
    expect(packets).to.be.above(0)
  })
})

function iptablesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'counting what reaches a victim address needs root (iptables)'
  try {
    execFileSync('iptables', ['-L', 'OUTPUT', '-n'], { stdio: 'ignore' })
  } catch {
    return 'counting what reaches a victim address needs iptables'
  }
  return undefined
}

/** The packets and bytes the counting rule for `victim` saw. */
function counted(victim: string): { packets: number; bytes: number } {
  const listing = execFileSync('iptables', ['-L', 'OUTPUT', '-n', '-v', '-x']).toString()
  const line = listing.split('\n').find((l) => l.includes(`udsu-victim-${process.pid}`) && l.includes(victim))
  const [packets, bytes] = (line ?? '').trim().split(/\s+/).map(Number)
  return { packets: packets ?? 0, bytes: bytes ?? 0 }
}
