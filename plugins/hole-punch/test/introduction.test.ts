// An introduction is one datagram to each side, and a datagram can be lost: the side whose copy was lost learns of it
// from the other side's punches and asks for a new one; when those punches cannot reach it (its NAT lets in only
// answers), the other side, hearing nothing, asks again. Neither leaves its peer punching into nothing.
import { expect } from 'chai'
import { encodeJson, FrameKind } from '../../../core/wire'
import { makeClient, startServer } from '../../../test/support/inprocess'
import { makeProbe } from '../../../protocol'
import { cleanupTemp } from '../../../test/support/processes'

/**
 * Whether a frame from the server is an introduction: it comes sealed, and of the sealed server messages only an
 * introduction carries a whole public key (hundreds of bytes; a `registered` or `pong` is under 200).
 */
const isIntro = (frame: { kind: number; body: Buffer } | undefined) =>
  frame?.kind === FrameKind.Channel && frame.body.length > 400

describe('hole-punch: a lost introduction', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('is asked for again when the peer punches under it: the path opens at once, not when the attempt gives up', async () => {
    const server = await startServer() // no relay: only a direct path can join them
    const address = `127.0.0.1:${server.address().port}`
    // Punching outlasts the test's bound, so only a new introduction can open the path in time.
    const plugins = [
      { resolve: 'udp', options: {} },
      { resolve: 'hole-punch', options: { punchTimeoutMs: 5_000 } },
      { resolve: 'rsa', options: {} },
    ]
    const alice = makeClient('alice', address, { plugins })
    const bob = makeClient('bob', address, { plugins })
    let dropped = 0
    // Loses bob's copy of the first introduction, as a lossy link would.
    bob.client.hooks.receive.tap({ name: 'lossy-link', stage: -1000 }, ({ frame }) => {
      if (dropped > 0 || !isIntro(frame)) return undefined
      dropped++
      return true
    })
    try {
      await Promise.all([alice.client.start(), bob.client.start()])
      const started = Date.now()
      expect(await alice.client.connect('bob')).to.equal('direct')
      const ms = Date.now() - started
      expect(dropped, 'bob lost the first introduction').to.equal(1)
      expect(ms, `direct after ${ms} ms`).to.be.below(1_000)
      expect(server.stats.introductions).to.equal(2)
    } finally {
      await Promise.all([alice.client.stop(), bob.client.stop()])
      await server.close()
    }
  })

  it('is asked for again when the peer stays silent, its NAT dropping our punches: the path opens a second in', async () => {
    const server = await startServer()
    const address = `127.0.0.1:${server.address().port}`
    const plugins = [
      { resolve: 'udp', options: {} },
      { resolve: 'hole-punch', options: { punchTimeoutMs: 5_000 } },
      { resolve: 'rsa', options: {} },
    ]
    const alice = makeClient('alice', address, { plugins })
    const bob = makeClient('bob', address, { plugins })
    let intros = 0
    bob.client.hooks.receive.tap({ name: 'lossy-link-and-nat', stage: -1000 }, ({ frame }) => {
      // bob loses his copy of the first introduction; and, as behind a NAT that lets in only answers, nothing from
      // alice gets through before bob has punched her, which he does once introduced.
      if (isIntro(frame)) return ++intros === 1 ? true : undefined
      return frame?.kind === FrameKind.Probe && intros < 2 ? true : undefined
    })
    try {
      await Promise.all([alice.client.start(), bob.client.start()])
      const started = Date.now()
      expect(await alice.client.connect('bob')).to.equal('direct')
      const ms = Date.now() - started
      expect(intros, 'bob lost the first introduction and got the second').to.equal(2)
      expect(ms, `direct after ${ms} ms`).to.be.within(1_000, 2_000)
    } finally {
      await Promise.all([alice.client.stop(), bob.client.stop()])
      await server.close()
    }
  })

  it('is not asked for because of a late punch under an older token while a path to that peer exists', async () => {
    const server = await startServer()
    const address = `127.0.0.1:${server.address().port}`
    const alice = makeClient('alice', address)
    const bob = makeClient('bob', address)
    try {
      await Promise.all([alice.client.start(), bob.client.start()])
      expect(await alice.client.connect('bob')).to.equal('direct')
      expect(server.stats.introductions).to.equal(1)
      // A punch from alice's last attempt, or one before, arriving now (birthday probes go on for seconds).
      const bytes = encodeJson(FrameKind.Probe, { ...makeProbe('0'.repeat(32), 'punch', 'alice', 'bob', 1) })
      const transport = { name: 'test', local: () => ({ address: '127.0.0.1', port: 1 }), send: async () => undefined }
      bob.client.hooks.receive.call({
        bytes,
        from: { address: '127.0.0.1', port: 2 },
        transport,
        frame: { kind: FrameKind.Probe, body: bytes.subarray(3) },
      })
      // A missed introduction is asked for 100 ms after such a punch (INTRO_GRACE_MS): nothing is asked after three times that.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(server.stats.introductions).to.equal(1)
    } finally {
      await Promise.all([alice.client.stop(), bob.client.stop()])
      await server.close()
    }
  })
})
