// Registering with a busy server: clients behind one address (as behind one NAT) that start together run into the
// server's registration limit per address; "busy" is not a refusal, so each retries on its own and all get online.
// And with a server whose second port cannot be reached: NAT type unknown, and later registrations do not wait for it.
import { expect } from 'chai'
import { generateKeyPairSync } from 'node:crypto'
import { DEFAULT_LIMITS } from '../../../server/index'
import { makeClient, startServer } from '../../../test/support/inprocess'
import { cleanupTemp } from '../../../test/support/processes'

describe('hole-punch: registering with a busy or half-reachable server', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('retries a "too many registrations" answer on its own, and every client behind the one address gets online', async () => {
    // 4 registration steps a second per address, 4 at once: a client takes up to 4, so four clients cannot all pass at once.
    const server = await startServer({ limits: { ...DEFAULT_LIMITS, registrationsPerSecond: 4, registrationBurst: 4 } })
    const address = `127.0.0.1:${server.address().port}`
    const clients = ['alice', 'bob', 'carol', 'dave'].map((name) => makeClient(name, address))
    try {
      const online = clients.map(
        (c) =>
          new Promise<void>((resolve) =>
            c.client.hooks.server.tap('test-online', (state) => {
              if (state.online) resolve()
            }),
          ),
      )
      await Promise.all(clients.map((c) => c.client.start()))
      await Promise.all(online)
      expect(server.stats.limited, 'the limit was reached, so the retries were needed').to.be.above(0)
      expect(clients.flatMap((c) => c.problems.map((p) => p.message))).to.deep.equal([]) // busy is not shown as a refusal
      expect(server.online).to.equal(4)
      // One registration each: the NAT type was learned between cookie and register, not registered a second time.
      expect(server.stats.registrations).to.equal(4)
    } finally {
      await Promise.all(clients.map((c) => c.client.stop()))
      await server.close()
    }
  })

  it('registers without the NAT type when the second port never answers, and does not wait for it again', async () => {
    const key = generateKeyPairSync('ed25519').privateKey // the same server comes back: the same key
    const first = await startServer({ key })
    const { port } = first.address()
    const altPort = first.altAddress()?.port
    const alice = makeClient('alice', `127.0.0.1:${port}`, {
      plugins: [
        { resolve: 'udp', options: {} },
        { resolve: 'hole-punch', options: { keepaliveMs: 200 } },
        { resolve: 'rsa', options: {} },
      ],
    })
    // A firewall in front of the second port: its answers never reach alice.
    alice.client.hooks.receive.tap({ name: 'firewall', stage: -1000 }, (datagram) =>
      datagram.from.port === altPort ? true : undefined,
    )
    const registrations: boolean[] = []
    const waiters: Array<() => void> = []
    const serverState = (count: number) =>
      new Promise<void>((resolve) => waiters.push(() => registrations.length >= count && resolve()))
    alice.client.hooks.server.tap('test', (state) => {
      registrations.push(state.online)
      for (const waiter of waiters) waiter()
    })
    let second: Awaited<ReturnType<typeof startServer>> | undefined
    try {
      await alice.client.start()
      expect(registrations).to.deep.equal([true])
      expect(first.stats.mappings, 'asked (and answered, but the answers were dropped)').to.be.above(0)
      // The server goes away and comes back on the same ports: alice registers again, without asking the silent port.
      await first.close()
      await serverState(2)
      second = await startServer({ port, altPort, key })
      expect(second.altAddress()?.port).to.equal(altPort)
      await serverState(3)
      expect(registrations).to.deep.equal([true, false, true])
      expect(second.stats.mappings).to.equal(0)
    } finally {
      await alice.client.stop()
      await second?.close()
    }
  })
})
