// A flood from one source: the server limits it, never answers it with more than it sent, and keeps serving everyone else.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { encodeJson, FrameKind } from '../../core/wire'
import { HELLO_PAD, PING_PAD } from '../../protocol'
import { makeClient, startServer } from '../support/inprocess'
import { cleanupTemp, fixtureProfile } from '../support/processes'

const FLOOD = 30_000

describe('a flood against the rendezvous server', function () {
  this.timeout(60_000)
  after(cleanupTemp)

  it('is rate-limited without amplification while other clients register, connect and chat', async () => {
    const server = await startServer()
    const port = server.address().port
    // The flooder has its own loopback address: limits are per source address.
    const flooder = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.2', resolve))
    let bytesSent = 0
    let bytesReceived = 0
    flooder.on('message', (bytes) => (bytesReceived += bytes.length))
    const messages = [
      () => encodeJson(FrameKind.Server, { t: 'hello', rid: randomBytes(4).toString('hex'), pad: HELLO_PAD }),
      () =>
        encodeJson(FrameKind.Server, {
          t: 'register',
          rid: '1',
          cookie: randomBytes(16).toString('hex'),
          name: 'mallory',
          key: 'x',
          local: [],
        }),
      () => encodeJson(FrameKind.Server, { t: 'ping', rid: '2', pad: PING_PAD }),
      () => encodeJson(FrameKind.Server, { t: 'prove', rid: '3', sig: randomBytes(384).toString('base64') }),
    ]
    const flood = (async () => {
      for (let i = 0; i < FLOOD; i++) {
        const bytes = messages[i % messages.length]()
        bytesSent += bytes.length
        flooder.send(bytes, port, '127.0.0.1')
        if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
      }
    })()

    // Meanwhile two people register, find each other and talk.
    const address = `127.0.0.1:${port}`
    const alice = makeClient('alice', address)
    const bob = makeClient('bob', address, { profile: fixtureProfile('bob') })
    await Promise.all([alice.client.start(), bob.client.start()])
    await alice.client.send('bob', 'through the storm')
    await bob.message('through the storm')
    await bob.client.send('alice', 'loud and clear')
    await alice.message('loud and clear')
    expect(bytesSent, 'the conversation happened during the flood').to.be.lessThan(FLOOD * 40)
    await flood
    await new Promise((resolve) => setTimeout(resolve, 100)) // the last replies are in flight on loopback

    process.stdout.write(
      `      flood: sent ${bytesSent} bytes, got back ${bytesReceived}; limited ${server.stats.limited}, unsent ${server.stats.unsent}\n`,
    )
    expect(server.stats.limited).to.be.greaterThan(0)
    expect(bytesReceived).to.be.at.most(bytesSent)
    expect(server.online).to.equal(2)

    await alice.client.stop()
    await bob.client.stop()
    await server.close()
    flooder.close()
  })
})
