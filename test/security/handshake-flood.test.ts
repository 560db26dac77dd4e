// Issue 11, finding 7: forged handshake REQUESTs at the side that does RSA work for them (the initiator), 1,600 a
// second from a raw socket with forged source addresses (half the peer's own endpoint, half random ones), both one nonce
// repeated with guessed cookies and a fresh nonce each time. Before, fresh nonces kept a session from forming for 25 s,
// and a nonce sent twice passed the flood filter. Now a REQUEST does RSA work only if it echoes the cookie the victim
// sent to the peer's path for that nonce and source: the victim makes no RSA signature or decryption for any of them,
// its conversation goes on over the session it has, and a new handshake forms under the flood.
import { expect } from 'chai'
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import type { Endpoint } from '../../core/types'
import { encodeFrame, FrameKind } from '../../core/wire'
import type { RendezvousServer } from '../../server'
import { floodForged, requireForge } from '../support/forge'
import { makeClient, startByRole, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

const FORGED_PER_SECOND = 1600
/** Longer than the test needs: it stops the flood itself once the new session formed, and checks it was still on. */
const FLOOD_SECONDS = 40
/** Liveness only: a new handshake needs a punch, a few round trips and the 300 ms retransmissions on a loaded machine;
 *  before, 25 s were not enough. */
const HANDSHAKE_BOUND_MS = 12_000
const plugins = [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false } },
  { resolve: 'rsa', options: {} },
]
const nodeCrypto = createRequire(__filename)('node:crypto') as Record<string, unknown>
const endpointOf = (client: TestClient): Endpoint => ({
  address: '127.0.0.1',
  port: client.client.container.cradle.transports.primary().local().port,
})

/** Names the step a wait belongs to in its error. */
const step = <T>(what: string, waiting: Promise<T>): Promise<T> =>
  waiting.catch((error: Error) => Promise.reject(new Error(`${what}: ${error.message}`)))

/** A REQUEST from the responder as the wire carries it: header, nonce, cookie. */
function forgedRequest(from: string, to: string): Buffer {
  const name = (value: string) => Buffer.concat([Buffer.of(Buffer.byteLength(value)), Buffer.from(value)])
  return encodeFrame(
    FrameKind.Handshake,
    Buffer.concat([Buffer.of(0x01), name(from), name(to), randomBytes(16), randomBytes(16)]),
  )
}

/** Counts the RSA private-key operations (signatures, decryptions) made with `key` from now on; call the result to stop. */
function countPrivateKeyOperations(key: KeyObject): { count: () => number; stop: () => void } {
  let operations = 0
  const originals = { sign: nodeCrypto.sign, privateDecrypt: nodeCrypto.privateDecrypt } as Record<
    string,
    (...args: unknown[]) => unknown
  >
  const usesKey = (option: unknown) => {
    const candidate = (option as { key?: unknown } | undefined)?.key
    return (
      candidate instanceof Object &&
      'equals' in candidate &&
      (candidate as KeyObject).type === 'private' &&
      (candidate as KeyObject).equals(key)
    )
  }
  nodeCrypto.sign = (...args: unknown[]) => {
    if (usesKey(args[2])) operations++
    return originals.sign(...args)
  }
  nodeCrypto.privateDecrypt = (...args: unknown[]) => {
    if (usesKey(args[0])) operations++
    return originals.privateDecrypt(...args)
  }
  return {
    count: () => operations,
    stop: () => Object.assign(nodeCrypto, originals),
  }
}

describe('finding 7: forged handshake REQUESTs from forged source addresses, 1,600 a second', function () {
  this.timeout(120_000)
  before(requireForge)
  after(cleanupTemp)
  let server: RendezvousServer
  const running: TestClient[] = []
  let counter: ReturnType<typeof countPrivateKeyOperations> | undefined
  let flood: ReturnType<typeof floodForged> | undefined
  afterEach(async () => {
    flood?.stop()
    counter?.stop()
    for (const client of running.splice(0)) await client.client.stop().catch(() => undefined)
    await server?.close()
  })

  for (const mode of ['one nonce repeated (with guessed cookies)', 'a fresh nonce each time'] as const) {
    it(`${mode}: the victim does no RSA work for them, its conversation goes on, and a new handshake forms under the flood`, async () => {
      server = await startServer()
      const address = `127.0.0.1:${server.address().port}`
      // The victim is the initiator: the side a REQUEST with a nonce asks for an INIT (RSA work).
      const { initiator: victim, responder: peer } = await startByRole(address, plugins, running)
      const [victimName, peerName] = [victim.client.settings.name, peer.client.settings.name]
      await peer.client.send(victimName, 'before the flood')
      await step('before the flood', victim.message('before the flood'))

      let forgedHeard = 0
      let wakeAt: { count: number; wake: () => void } | undefined
      // Every handshake frame the victim hears (the real ones are a handful).
      victim.client.hooks.receive.tap({ name: 'count-handshakes', stage: -1000 }, ({ frame }) => {
        if (frame?.kind === FrameKind.Handshake) forgedHeard++
        if (wakeAt && forgedHeard >= wakeAt.count) wakeAt.wake()
        return undefined
      })
      const heard = (count: number) => new Promise<void>((resolve) => (wakeAt = { count, wake: resolve }))
      const victimKey = createPrivateKey(fs.readFileSync(path.join(victim.client.config.profile!, 'identity.pem')))
      counter = countPrivateKeyOperations(victimKey)

      const payload = forgedRequest(peerName, victimName)
      flood = floodForged(endpointOf(victim), {
        perSecond: FORGED_PER_SECOND,
        seconds: FLOOD_SECONDS,
        payload,
        // The nonce stays and the cookie is guessed anew, or both are new each time.
        freshFrom: mode.startsWith('one') ? payload.length - 16 : payload.length - 32,
        from: [endpointOf(peer)],
      })

      // Two seconds' worth of flood alone: no RSA work at all.
      await heard(2 * FORGED_PER_SECOND)
      expect(counter.count(), 'RSA private-key operations by the victim for forged REQUESTs').to.equal(0)

      // The conversation goes on over the session it has.
      await victim.client.send(peerName, 'during the flood')
      await step('during the flood', peer.message('during the flood', HANDSHAKE_BOUND_MS))
      await peer.client.send(victimName, 'still here')
      await step('still here', victim.message('still here', HANDSHAKE_BOUND_MS))

      // The peer restarts (and loses its session) and speaks first (the victim may not have heard of the restart yet;
      // this test has no reliable delivery to send again): a new handshake, whose INIT the victim makes, forms under the flood.
      await peer.client.stop()
      const again = makeClient(peerName, address, { plugins, profile: peer.client.config.profile })
      running.push(again)
      await again.client.start()
      const started = Date.now()
      await again.client.send(victimName, 'after the restart')
      await step('after the restart', victim.message('after the restart', HANDSHAKE_BOUND_MS))
      await victim.client.send(peerName, 'and back')
      await step('and back', again.message('and back', HANDSHAKE_BOUND_MS))
      const handshakeMs = Date.now() - started
      expect(flood.over, 'the flood was still on when the new session formed').to.equal(false)
      const operations = counter.count()
      flood.stop()
      const sent = await flood.sent
      console.log(
        `      ${sent} forged REQUESTs (${forgedHeard} reached the victim); new session in ${handshakeMs} ms; ${operations} RSA private-key operations by the victim`,
      )
      // One INIT signature for the real handshake (two if a retransmission crossed a new nonce); none for the forgeries.
      expect(operations, 'RSA private-key operations by the victim').to.be.within(1, 2)
    })
  }
})
