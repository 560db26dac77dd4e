// 8,000 made-up names introduced to a client (a lying or forged server's `intro`s, as hole-punch hands them to the
// plugins): nothing is written to known-peers.json, what is kept for them is bounded, and the real conversation goes on.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MAX_PEERS } from '../../../core/peers'
import { makeClient, startServer, type TestClient } from '../../../test/support/inprocess'
import { cleanupTemp, FIXTURE_KEYS } from '../../../test/support/processes'
import type { RendezvousServer } from '../../../server'
import { identityFromPem } from '../identity'
import { heapUsed } from '../../../test/support/heap'

const FAKE_NAMES = 8000
/** Generous bounds, far below what the attack cost before (536 MB more heap, 31 s of CPU: issue 11, finding 5). */
const MAX_HEAP_GROWTH_BYTES = 32 * 1024 * 1024
const MAX_CPU_MS = 20_000

const publicPem = (fixture: string) =>
  identityFromPem(fs.readFileSync(path.join(FIXTURE_KEYS, `${fixture}.pem`), 'utf8')).publicKeyPem

describe('a flood of introduced names', function () {
  this.timeout(120_000)
  let server: RendezvousServer
  const running: TestClient[] = []
  after(async () => {
    for (const client of running) await client.client.stop().catch(() => undefined)
    await server?.close()
    cleanupTemp()
  })

  it('persists nothing for them, keeps a bounded table, and the real conversation goes on', async () => {
    server = await startServer()
    const address = `127.0.0.1:${server.address().port}`
    const plugins = [
      { resolve: 'udp', options: {} },
      { resolve: 'hole-punch', options: {} },
      { resolve: 'rsa', options: {} },
      { resolve: 'reliable', options: {} },
    ]
    const bob = makeClient('bob', address, { plugins })
    const alice = makeClient('alice', address, { plugins })
    running.push(bob, alice)
    await bob.client.start()
    await alice.client.start()
    const first = await alice.client.send('bob', 'before the flood')
    await bob.message('before the flood')
    await alice.state(first.id, 'delivered')
    const knownFile = path.join(bob.client.config.profile!, 'known-peers.json')
    const knownBefore = fs.readFileSync(knownFile, 'utf8')

    const { peers } = bob.client.container.cradle
    const keys = [publicPem('carol'), publicPem('dave')]
    const heapBefore = heapUsed()
    const cpuBefore = process.cpuUsage()
    for (let i = 0; i < FAKE_NAMES; i++) {
      // What hole-punch does with each `intro` the server sends: the directory learns the key, the plugins hear of it.
      const info = peers.update(`fake${i}`, {
        publicKey: keys[i % keys.length],
        online: true,
        instance: i.toString(16).padStart(16, '0'),
      })
      bob.client.hooks.peerDiscovered.call(info)
    }
    const cpu = process.cpuUsage(cpuBefore)
    const cpuMs = (cpu.user + cpu.system) / 1000
    const grown = heapUsed() - heapBefore
    console.log(
      `      ${FAKE_NAMES} names: ${Math.round(cpuMs)} ms of CPU, heap +${(grown / 2 ** 20).toFixed(1)} MiB, directory ${peers.size}`,
    )

    expect(fs.readFileSync(knownFile, 'utf8')).to.equal(knownBefore)
    expect(peers.size).to.be.at.most(MAX_PEERS)
    expect(peers.get('alice')?.path, 'the peer in a conversation is kept').to.be.a('string')
    expect(grown).to.be.at.most(MAX_HEAP_GROWTH_BYTES)
    expect(cpuMs).to.be.below(MAX_CPU_MS)

    const after = await bob.client.send('alice', 'after the flood')
    await alice.message('after the flood')
    await bob.state(after.id, 'delivered')
  })
})
