// Registering with a busy server: clients behind one address (as behind one NAT) that start together run into the
// server's registration limit per address; "busy" is not a refusal, so each retries on its own and all get online.
import { expect } from 'chai'
import { DEFAULT_LIMITS } from '../../../server/index'
import { makeClient, startServer } from '../../../test/support/inprocess'
import { cleanupTemp } from '../../../test/support/processes'

describe('hole-punch: registering with a busy server', function () {
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
})
