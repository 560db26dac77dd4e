// Frame kinds registered by plugins, as a third party would use them: through udsu/testing, plugins loaded by path.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import * as path from 'node:path'
import { encodeFrame } from '../../core/index'
import { createTestNetwork, type TestNetwork } from '..'
import { KNOCK_KIND } from './fixtures/knock'

const plugin = (name: string) => ({ resolve: path.join(__dirname, 'fixtures', `${name}.js`), options: {} })

describe('udsu/testing: a plugin registers a frame kind', function () {
  this.timeout(30_000)
  let net: TestNetwork

  beforeEach(async () => {
    net = await createTestNetwork()
  })
  afterEach(() => net.close())

  it('two clients with the plugin exchange frames of its kind', async () => {
    const alice = await net.client('alice', { plugins: [plugin('knock')] })
    const bob = await net.client('bob', { plugins: [plugin('knock')] })
    expect(await alice.command('/knock bob who is there?')).to.deep.equal({ info: ['KNOCK sent to bob'], errors: [] })
    expect(await bob.next('info', (i) => i.source === 'knock')).to.deep.equal({
      source: 'knock',
      text: 'KNOCK: who is there?',
    })
    expect(await bob.command('/knock alice me')).to.deep.equal({ info: ['KNOCK sent to alice'], errors: [] })
    expect(await alice.next('info', (i) => i.source === 'knock')).to.deep.equal({ source: 'knock', text: 'KNOCK: me' })
    // Chat goes on beside it.
    await alice.send('bob', 'and a message')
    expect((await bob.next('message')).text).to.equal('and a message')
  })

  it('drops and counts a frame of a kind the receiver has not registered', async () => {
    const carol = await net.client('carol', { plugins: [plugin('ring')] })
    const socket = dgram.createSocket('udp4')
    try {
      const to = carol.local()
      const send = (bytes: Buffer) =>
        new Promise<void>((resolve, reject) =>
          socket.send(bytes, to.port, to.address, (e) => (e ? reject(e) : resolve())),
        )
      const before = carol.stats()
      // A KNOCK (carol has no knock plugin), then a RING (she has): once the RING is heard, the KNOCK was handled.
      await send(encodeFrame(KNOCK_KIND, Buffer.from('let me in')))
      await send(encodeFrame(0x52, Buffer.from('ding')))
      expect(await carol.next('info', (i) => i.source === 'ring')).to.deep.equal({ source: 'ring', text: 'RING: ding' })
      const after = carol.stats()
      expect(after.unknownKinds - before.unknownKinds, 'the KNOCK counted as an unknown kind').to.equal(1)
      expect(after.dropped - before.dropped, 'and as dropped').to.equal(1)
    } finally {
      socket.close()
    }
  })

  it("refuses a kind another plugin registered, naming both, and one of udsu's own", async () => {
    const duplicate = await net.client('dave', { plugins: [plugin('knock'), plugin('knock-copy')] }).then(
      () => undefined,
      (e: Error) => e,
    )
    expect(duplicate, 'a client with both plugins does not start').to.be.instanceOf(Error)
    expect(duplicate?.message).to.contain(
      'frame kind 75 is declared by plugin "knock-copy" (TAP) and by plugin "knock" (KNOCK)',
    )
    const reserved = await net.client('erin', { plugins: [plugin('reserved')] }).then(
      () => undefined,
      (e: Error) => e,
    )
    expect(reserved, 'a client with it does not start').to.be.instanceOf(Error)
    expect(reserved?.message).to.contain(
      'plugin "reserved" declares frame kind 4: a kind must be an integer in 16..255',
    )
  })
})
