// Everything that crosses the rendezvous server and its relay, captured: none of the texts sent is in it.
import { expect } from 'chai'
import { decodeFrame, FrameKind } from '../../core/wire'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

describe('what the server and the relay see', function () {
  this.timeout(60_000)
  after(cleanupTemp)

  it('carries a relayed conversation without one readable text', async () => {
    const crossing: Buffer[] = []
    const server = await startServer({ relay: true, observe: (bytes) => void crossing.push(Buffer.from(bytes)) })
    const address = `127.0.0.1:${server.address().port}`
    // No direct path: each client's network drops the peers' punches, so the relay is the only way.
    const plugins = [
      { resolve: 'udp', options: {} },
      { resolve: 'hole-punch', options: { relayAfterMs: 0, punchTimeoutMs: 1000 } },
      { resolve: 'rsa', options: {} },
      { resolve: 'reliable', options: {} },
    ]
    const seenByPeers: Buffer[] = []
    const clients: TestClient[] = []
    for (const name of ['alice', 'bob']) {
      const client = makeClient(name, address, { plugins })
      client.client.hooks.receive.tap({ name: 'no-direct-path', stage: -1000 }, (datagram) => {
        seenByPeers.push(Buffer.from(datagram.bytes))
        return decodeFrame(datagram.bytes)?.kind === FrameKind.Probe ? true : undefined
      })
      await client.client.start()
      clients.push(client)
    }
    const [alice, bob] = clients
    const texts = [
      'the launch code is 0000',
      'пароль: swordfish',
      '秘密のメッセージ 🤫',
      'long secret ' + Array.from({ length: 1200 }, (_, i) => i.toString(36)).join('-'),
    ]
    for (const [i, text] of texts.entries()) {
      const [from, to] = i % 2 ? [bob, alice] : [alice, bob]
      const sent = await from.client.send(to.client.settings.name, text)
      await to.message(text)
      await from.state(sent.id, 'delivered')
    }
    expect(alice.connected.map((c) => c.path)).to.include('relay')
    expect(alice.connected.map((c) => c.path)).not.to.include('direct')

    // RELAY frames cross sealed in the client–server channel: the server's count says how many it forwarded.
    process.stdout.write(
      `      capture: ${crossing.length} datagrams crossed the server, ${server.stats.relayed} of them relayed\n`,
    )
    expect(server.stats.relayed).to.be.greaterThan(texts.length)
    for (const text of texts) {
      for (const needle of [Buffer.from(text), Buffer.from(text.slice(0, 12))]) {
        expect(
          crossing.some((bytes) => bytes.includes(needle)),
          `"${text.slice(0, 12)}" crossed the server`,
        ).to.equal(false)
        expect(
          seenByPeers.some((bytes) => bytes.includes(needle)),
          `"${text.slice(0, 12)}" was on the wire`,
        ).to.equal(false)
      }
    }
    for (const client of clients) await client.client.stop()
    await server.close()
  })
})
