// A mocha suite that any encryption plugin runs against itself: two real clients on loopback talk through it, and the
// suite plays the attacker on the wire: it reads every datagram, replays them, changes their bytes and reflects them.
// No delivery plugin runs (a reliable link would drop a replay itself): what is checked is the encryption's own.
import * as assert from 'node:assert/strict'
import * as dgram from 'node:dgram'
import type { PluginEntry } from '../core/config'
import type { Endpoint } from '../core/types'
import { decodeFrame, FrameKind } from '../core/wire'
import { createTestNetwork, type TestClient, type TestNetwork } from './index'

export interface EncryptionComplianceOptions {
  /** The encryption plugin under test (and any it needs), after a transport (`udp` on 127.0.0.1) and `hole-punch`. */
  plugins: PluginEntry[]
}

/** A DATA datagram one client received, with the endpoint of the socket that received it. */
interface Captured {
  bytes: Buffer
  to: Endpoint
}

/** Registers the suite: `describeEncryptionCompliance('rsa', { plugins: [{ resolve: 'rsa', options: {} }] })`. */
export function describeEncryptionCompliance(name: string, options: EncryptionComplianceOptions): void {
  describe(`encryption compliance: ${name}`, function () {
    this.timeout(30_000)
    let net: TestNetwork
    let attacker: dgram.Socket

    beforeEach(async () => {
      net = await createTestNetwork()
      attacker = dgram.createSocket('udp4')
      await new Promise<void>((resolve) => attacker.bind(0, '127.0.0.1', resolve))
    })
    afterEach(async () => {
      attacker.close()
      await net.close()
    })

    const client = (who: string) =>
      net.client(who, {
        replacePlugins: [
          { resolve: 'udp', options: { host: '127.0.0.1' } },
          { resolve: 'hole-punch', options: {} },
          ...options.plugins,
        ],
      })

    /** Every DATA datagram `receiver` gets from now on (before any plugin sees it). */
    function capture(receiver: TestClient): Captured[] {
      const captured: Captured[] = []
      receiver.hooks.receive.tap({ name: 'compliance-wire', stage: -10_000 }, (datagram) => {
        if (datagram.frame?.kind === FrameKind.Data)
          captured.push({ bytes: Buffer.from(datagram.bytes), to: datagram.transport.local() })
        return undefined
      })
      return captured
    }

    /** Sends bytes from the attacker's own socket: a forged datagram need not come from the peer's address. */
    const inject = (bytes: Buffer, to: Endpoint) =>
      new Promise<void>((resolve, reject) =>
        attacker.send(bytes, to.port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      )

    /** Sends `text` and waits for the receiver to show it; returns the DATA datagrams the receiver got meanwhile. */
    async function exchange(from: TestClient, to: TestClient, wire: Captured[], text: string): Promise<Captured[]> {
      const before = wire.length
      await from.send(to.name, text)
      assert.equal((await to.next('message', (m) => m.from === from.name)).text, text)
      return wire.slice(before)
    }

    /** What `to` shows next from `from` is `text`: nothing forged, replayed or changed was shown before it. */
    async function nextShownIs(from: TestClient, to: TestClient, text: string): Promise<void> {
      await from.send(to.name, text)
      const shown = await to.next('message', (m) => m.from === from.name)
      assert.equal(shown.text, text, `${to.name} showed "${shown.text}" from ${from.name} before "${text}"`)
    }

    it('carries messages both ways, and no datagram on the wire contains their text', async () => {
      const [alice, bob] = [await client('alice'), await client('bob')]
      const [toBob, toAlice] = [capture(bob), capture(alice)]
      const secret = 'the password is swordfish'
      const sent = [
        ...(await exchange(alice, bob, toBob, secret)),
        ...(await exchange(bob, alice, toAlice, `re: ${secret}`)),
      ]
      assert.ok(sent.length >= 2, 'no DATA datagram carried the messages')
      for (const { bytes } of sent) assert.equal(bytes.indexOf('swordfish'), -1, 'plaintext on the wire')
    })

    it("shows a message once when its datagram is replayed, from the peer's address or another", async () => {
      const [alice, bob] = [await client('alice'), await client('bob')]
      const wire = capture(bob)
      const carried = await exchange(alice, bob, wire, 'pay bob 10')
      for (const { bytes, to } of carried) await inject(bytes, to)
      await nextShownIs(alice, bob, 'after the replay')
    })

    it('drops a datagram with any byte changed, and the conversation goes on', async () => {
      const [alice, bob] = [await client('alice'), await client('bob')]
      const wire = capture(bob)
      const [{ bytes, to }] = await exchange(alice, bob, wire, 'original')
      // Past the frame header, in the middle, and the last byte (an authentication tag, for an AEAD).
      for (const at of [decodeFrame(bytes) ? 2 : 0, bytes.length >> 1, bytes.length - 1]) {
        const changed = Buffer.from(bytes)
        changed[at] ^= 0x01
        await inject(changed, to)
      }
      await nextShownIs(alice, bob, 'after the forgeries')
    })

    it("does not take its own datagram reflected back as the peer's", async () => {
      const [alice, bob] = [await client('alice'), await client('bob')]
      const wire = capture(bob)
      await exchange(bob, alice, capture(alice), 'hello alice') // a session both ways first
      const carried = await exchange(alice, bob, wire, 'from alice')
      for (const { bytes } of carried) await inject(bytes, alice.local())
      await nextShownIs(bob, alice, 'from bob, after the reflection')
    })
  })
}
