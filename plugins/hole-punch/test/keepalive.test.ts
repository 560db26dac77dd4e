// An idle direct path stays open by its own keepalives: they are on the wire both ways while nothing else is, and the
// server is not asked to introduce the pair again (re-introduction would hide a path that had died in silence).
import { expect } from 'chai'
import { decodeJson, FrameKind } from '../../../core/wire'
import type { TestClient } from '../../../test/support/inprocess'
import { makeClient, startServer } from '../../../test/support/inprocess'
import { cleanupTemp } from '../../../test/support/processes'

const KEEPALIVE_MS = 250
/** Keepalives to await from each side: several times the 2-interval silence after which a client asks the server again. */
const KEEPALIVES = 8

/** Resolves once `client` has received `count` keepalive probes from `peer`. */
function keepalivesFrom(client: TestClient, peer: string, count: number): Promise<void> {
  let seen = 0
  return new Promise((resolve) => {
    client.client.hooks.receive.tap({ name: 'test', stage: -100 }, ({ frame }) => {
      if (frame?.kind !== FrameKind.Probe) return undefined
      const probe = decodeJson(frame.body)
      if (probe?.t === 'keepalive' && probe.from === peer && ++seen === count) resolve()
      return undefined
    })
  })
}

describe('hole-punch: an idle path is kept by keepalives', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('sends keepalives both ways while idle, and the server makes no new introduction for the pair', async () => {
    const server = await startServer()
    const address = `127.0.0.1:${server.address().port}`
    const plugins = [
      { resolve: 'udp', options: {} },
      { resolve: 'hole-punch', options: { keepaliveMs: KEEPALIVE_MS, embeddedServer: false } },
      { resolve: 'rsa', options: {} },
    ]
    const alice = makeClient('alice', address, { plugins })
    const bob = makeClient('bob', address, { plugins })
    try {
      await alice.client.start()
      await bob.client.start()
      expect(await alice.client.connect('bob')).to.equal('direct')
      await bob.waitFor('connected', bob.connected, (c) => c.peer === 'alice')
      const introductions = server.stats.introductions
      await Promise.all([keepalivesFrom(bob, 'alice', KEEPALIVES), keepalivesFrom(alice, 'bob', KEEPALIVES)])
      expect(server.stats.introductions, 'introductions while the pair was idle').to.equal(introductions)
      expect([...alice.problems, ...bob.problems]).to.deep.equal([])
    } finally {
      await Promise.all([alice.client.stop(), bob.client.stop()])
      await server.close()
    }
  })
})
