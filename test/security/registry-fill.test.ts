// Issue 11, finding 6: filling the server's registry to hide users. About 2.5 registrations a second per address (under
// the rate limit) filled the 10,000 slots in minutes, and `list` showed only the first 40 names sorted, so a flooder's
// "aaa…" names hid everyone else. Now each address and each /24 holds only so many registrations (16 and 64 by
// default), `list` pages and searches: the flooder gets its quota and no more, alice is found by name, and alice and bob
// (on other prefixes) go on talking.
import { expect } from 'chai'
import type { RendezvousServer } from '../../server'
import { DEFAULT_QUOTAS } from '../../server/registry'
import { UdpPeer } from '../../server/test/operator-support'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

/** The attack review's pace per address, and how many addresses of one /24 the flooder uses. */
const PER_ADDRESS_PER_SECOND = 2.5
const ADDRESSES = 8
const ATTEMPTS_PER_ADDRESS = 24

const pluginsOn = (host: string) => [
  { resolve: 'udp', options: { host } },
  { resolve: 'hole-punch', options: { embeddedServer: false } },
  { resolve: 'rsa', options: {} },
]

describe('finding 6: a flooder registering names from many addresses of one /24', function () {
  this.timeout(120_000)
  after(cleanupTemp)
  let server: RendezvousServer
  const running: TestClient[] = []
  const sockets: UdpPeer[] = []
  after(async () => {
    for (const socket of sockets) socket.close()
    for (const client of running) await client.client.stop().catch(() => undefined)
    await server?.close()
  })

  it('gets its quota and no more; alice is still found by name, and alice and bob go on talking', async () => {
    server = await startServer()
    const at = { address: '127.0.0.1', port: server.address().port }
    const address = `127.0.0.1:${at.port}`
    // alice and bob on other /24s (every 127.x address is this machine's).
    const alice = makeClient('alice', address, { plugins: pluginsOn('127.0.1.1') })
    const bob = makeClient('bob', address, { plugins: pluginsOn('127.0.2.1') })
    running.push(alice, bob)
    await alice.client.start()
    await bob.client.start()

    // The flood: from 127.0.0.1 to 127.0.0.8, each 2.5 registrations a second of names that sort before everyone's,
    // each from a new socket (a new port), all with one key.
    const outcomes: Array<{ host: string; reply: string }> = []
    await Promise.all(
      Array.from({ length: ADDRESSES }, async (_, index) => {
        const host = `127.0.0.${index + 1}`
        for (let i = 0; i < ATTEMPTS_PER_ADDRESS; i++) {
          const started = Date.now()
          const socket = await UdpPeer.open(at, 'udp4', host)
          sockets.push(socket)
          const reply = await socket
            .register(`aaa${index}x${String(i).padStart(2, '0')}`, 'dave')
            .catch((error: Error) => ({ t: `no answer: ${error.message}`, code: '' }))
          outcomes.push({ host, reply: reply.t === 'error' ? String(reply.code) : String(reply.t) })
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(0, 1000 / PER_ADDRESS_PER_SECOND - (Date.now() - started))),
          )
        }
      }),
    )
    const accepted = outcomes.filter((o) => o.reply === 'registered')
    const refusals = new Set(outcomes.filter((o) => o.reply !== 'registered').map((o) => o.reply))
    console.log(
      `      ${outcomes.length} registrations tried from ${ADDRESSES} addresses: ${accepted.length} accepted; refusals: ${[...refusals].join(', ')}`,
    )
    expect(accepted.length, 'registrations the /24 holds').to.equal(DEFAULT_QUOTAS.perPrefix)
    for (let index = 1; index <= ADDRESSES; index++) {
      expect(
        accepted.filter((o) => o.host === `127.0.0.${index}`).length,
        `registrations from 127.0.0.${index}`,
      ).to.be.at.most(DEFAULT_QUOTAS.perAddress)
    }
    expect([...refusals]).to.deep.equal(['over_quota'])

    // alice is found by name, whatever sorts before her, and the first page is not all the flooder's.
    const looker = await UdpPeer.open(at, 'udp4', '127.0.3.1')
    sockets.push(looker)
    expect((await looker.register('carol')).t).to.equal('registered')
    expect(await looker.request({ t: 'list', query: 'alice' })).to.deep.include({ peers: ['alice'], more: false })

    // And the conversation goes on.
    await bob.client.send('alice', 'still here')
    await alice.message('still here')
    await alice.client.send('bob', 'so am I')
    await bob.message('so am I')
  })
})
