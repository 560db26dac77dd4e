// Issue 11, finding 2: squatting a name. Half a second after alice quit, mallory registered "alice" with her own key and
// a new contact's first message went to her. Now the name stays alice's key's while she is away: mallory is refused
// (so is every look-alike), and what bob writes meanwhile waits for the real alice.
import { expect } from 'chai'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

const plugins = [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false } },
  { resolve: 'rsa', options: {} },
  { resolve: 'reliable', options: {} },
]

describe('squatting the name of a user who went offline', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('is refused with the reason, for the name and its look-alikes; the message waits for the real alice', async () => {
    const server = await startServer()
    const address = `127.0.0.1:${server.address().port}`
    const started: TestClient[] = []
    const start = async (name: string, key = name) => {
      const client = makeClient(name, address, { plugins, key })
      started.push(client)
      await client.client.start()
      return client
    }
    try {
      const alice = await start('alice')
      const bob = await start('bob')
      await alice.client.stop()
      const refusals: string[] = []
      for (const name of ['alice', 'аlice', 'ALICE', 'ａｌｉｃｅ', '𝔞𝔩𝔦𝔠𝔢']) {
        const mallory = await start(name, 'carol')
        const problem = await mallory.waitFor('problem', mallory.problems, (p) => p.code === 'registration-refused')
        refusals.push(`${name}: ${problem.message}`)
        expect(problem.message, name).to.match(/belongs to another key/)
        await mallory.client.stop()
      }
      process.stdout.write(refusals.map((r) => `      ${r}\n`).join(''))
      expect(server.online, 'online: bob only').to.equal(1)
      // bob writes to alice while she is away: it waits, and reaches her when she is back, not anyone else.
      const sent = await bob.client.send('alice', 'for the real alice')
      const aliceAgain = await start('alice')
      await aliceAgain.message('for the real alice')
      await bob.state(sent.id, 'delivered')
    } finally {
      for (const client of started.reverse()) await client.client.stop().catch(() => undefined)
      await server.close()
    }
  })
})
