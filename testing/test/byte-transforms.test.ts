// Byte transforms as a third party writes them: plain CommonJS plugins (no copy of udsu at all) that tap `encode` on the
// way out and `decode` on the way in, loaded by path into clients of a test network. A transform that fails must stop
// its packet: never send, or read, the bytes it did not approve.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { createTestNetwork, DEFAULT_TEST_PLUGINS, type PluginEntry, type TestNetwork } from '..'

/** XORs every byte of every packet with `key`: before the encryption seals it, and again after it is opened. */
const XOR_PLUGIN = `
module.exports = {
  name: 'xor',
  create({ hooks }, { key }) {
    const xor = (bytes) => Buffer.from(bytes.map((b) => b ^ key))
    hooks.encode.tapPromise({ name: 'xor', stage: -10 }, async (packet) => ({ ...packet, bytes: xor(packet.bytes) }))
    hooks.decode.tapPromise({ name: 'xor', stage: 10 }, async (packet) => ({ ...packet, bytes: xor(packet.bytes) }))
  },
}`

/** Records the bytes right before the encryption seals them, for the test to see what went on the wire inside it. */
const SPY_PLUGIN = `
module.exports = {
  name: 'spy',
  create({ hooks }) {
    hooks.encode.tapPromise({ name: 'spy', stage: -1 }, async (packet) => {
      globalThis.__udsuSealedBytes.push(Buffer.from(packet.bytes))
      return packet
    })
  },
}`

/** On \`hook\`, passes packets through unchanged, except one that holds \`word\`: it throws, or refuses with udsu's Veto brand. */
const GATE_PLUGIN = `
module.exports = {
  name: 'gate',
  create({ hooks }, { hook, word, fail }) {
    const stage = hook === 'encode' ? -10 : 10
    hooks[hook].tapPromise({ name: 'gate', stage }, async (packet) => {
      if (!packet.bytes.includes(word)) return packet
      if (fail === 'veto') throw Object.assign(new Error('the gate refuses ' + word), { [Symbol.for('udsu.veto')]: true })
      throw new Error('the gate broke on ' + word)
    })
  },
}`

/** Without reliable delivery each message is one datagram, and a failed send fails the message: nothing retries it. */
const WITHOUT_RELIABLE: PluginEntry[] = DEFAULT_TEST_PLUGINS.filter(
  (entry) => typeof entry === 'object' && entry.resolve !== 'reliable',
)

describe('udsu/testing: byte transforms on encode and decode', function () {
  this.timeout(60_000)
  let net: TestNetwork
  let dir: string
  const pluginFile = (name: string, source: string) => {
    const file = path.join(dir, `${name}.js`)
    fs.writeFileSync(file, source)
    return file
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-transforms-'))
    ;(globalThis as Record<string, unknown>).__udsuSealedBytes = []
    net = await createTestNetwork()
  })
  afterEach(async () => {
    await net.close()
    delete (globalThis as Record<string, unknown>).__udsuSealedBytes
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('transforms the bytes on both ends: messages go both ways, and what was sealed was the transformed bytes', async () => {
    const xor = { resolve: pluginFile('xor', XOR_PLUGIN), options: { key: 0x5a } }
    const alice = await net.client('alice', { plugins: [xor, { resolve: pluginFile('spy', SPY_PLUGIN), options: {} }] })
    const bob = await net.client('bob', { plugins: [xor] })

    const sent = await alice.send('bob', 'hello bob, through the xor')
    expect(await bob.next('message')).to.include({ from: 'alice', text: 'hello bob, through the xor', id: sent.id })
    await alice.next('state', (s) => s.id === sent.id && s.state === 'delivered')
    await bob.send('alice', 'and back')
    expect((await alice.next('message')).text).to.equal('and back')

    // What alice's encryption sealed never held the text, and holds it once XORed back.
    const sealed = (globalThis as Record<string, unknown>).__udsuSealedBytes as Buffer[]
    expect(sealed.some((bytes) => bytes.includes('hello bob'))).to.equal(false)
    expect(
      sealed.some((bytes) => Buffer.from(bytes.map((b) => b ^ 0x5a)).includes('hello bob, through the xor')),
    ).to.equal(true)
  })

  it('a transform that throws on send stops that packet: it does not go out untransformed, and the plugin is named', async () => {
    const gate = {
      resolve: pluginFile('gate', GATE_PLUGIN),
      options: { hook: 'encode', word: 'secret', fail: 'throw' },
    }
    const alice = await net.client('alice', { replacePlugins: [...WITHOUT_RELIABLE, gate] })
    const bob = await net.client('bob', { replacePlugins: WITHOUT_RELIABLE })

    const secret = await alice.send('bob', 'the secret')
    const failed = await alice.next('state', (s) => s.id === secret.id && s.state !== 'pending')
    expect(failed.state).to.equal('failed')
    expect(failed.reason).to.equal('plugin "gate" failed in hook encode: the gate broke on secret')
    expect((await alice.next('problem')).source).to.equal('gate')

    // The next message arrives first: the one before it never left alice (a fail-open send would have come first).
    await alice.send('bob', 'after')
    expect((await bob.next('message')).text).to.equal('after')
  })

  it('a transform that refuses on send stops that packet with its reason', async () => {
    const gate = { resolve: pluginFile('gate', GATE_PLUGIN), options: { hook: 'encode', word: 'secret', fail: 'veto' } }
    const alice = await net.client('alice', { replacePlugins: [...WITHOUT_RELIABLE, gate] })
    const bob = await net.client('bob', { replacePlugins: WITHOUT_RELIABLE })

    const secret = await alice.send('bob', 'the secret')
    const failed = await alice.next('state', (s) => s.id === secret.id && s.state !== 'pending')
    expect(failed).to.include({ state: 'failed', reason: 'the gate refuses secret' })
    await alice.send('bob', 'after')
    expect((await bob.next('message')).text).to.equal('after')
  })

  for (const fail of ['throw', 'veto'] as const) {
    it(`a transform that ${fail === 'throw' ? 'throws' : 'refuses'} on receive drops that packet: it is not read untransformed`, async () => {
      const gate = { resolve: pluginFile('gate', GATE_PLUGIN), options: { hook: 'decode', word: 'secret', fail } }
      const alice = await net.client('alice', { replacePlugins: WITHOUT_RELIABLE })
      const bob = await net.client('bob', { replacePlugins: [...WITHOUT_RELIABLE, gate] })

      await alice.send('bob', 'the secret')
      if (fail === 'throw') {
        const problem = await bob.next('problem')
        expect(problem).to.include({
          source: 'gate',
          message: 'plugin "gate" failed in hook decode: the gate broke on secret',
        })
      }
      // Sent after it on the same path, so a packet read despite the failure would have been delivered first.
      await alice.send('bob', 'after')
      expect((await bob.next('message')).text).to.equal('after')
    })
  }

  it('a transform tapped after the encryption fails by name instead of sending bytes the peer cannot open', async () => {
    const late = XOR_PLUGIN.replace('stage: -10', 'stage: 10')
    const alice = await net.client('alice', {
      replacePlugins: [...WITHOUT_RELIABLE, { resolve: pluginFile('late-xor', late), options: { key: 1 } }],
    })
    await net.client('bob', { replacePlugins: WITHOUT_RELIABLE })
    const sent = await alice.send('bob', 'hello')
    const failed = await alice.next('state', (s) => s.id === sent.id && s.state !== 'pending')
    expect(failed.state).to.equal('failed')
    expect(failed.reason).to.match(
      /^plugin "xor" failed in hook encode: changed the bytes of a packet the encryption had already sealed: tap encode at a stage below 0/,
    )
  })
})
