// How the client treats its plugins' failures: on configure, init and start (and in create) they fail the start, named;
// on message hooks they are reported and the client goes on; a refusal (Veto, from any copy) is never taken for a pass.
import { expect } from 'chai'
import * as path from 'node:path'
import { Client } from '../client'
import { DEFAULT_CONFIG, type Config } from '../config'
import { createLogger } from '../log'
import { Cancelled, isCancelled, isVeto, MessageRefused, PluginFailure, Veto } from '../plugin'
import type { Problem } from '../types'
import { rejection, removeTempDirs, tempDir, writeFiles } from './support'

/** Sets an identity at init, as an encryption plugin does, so that a client of fakes can start. */
const FAKE_IDENTITY = `module.exports = { name: 'fake-identity', provides: ['encryption'], create({ hooks, me }) {
  hooks.init.tapPromise('fake-identity', async () => { me.publicKey = 'fake'; me.fingerprint = 'fake' })
} }\n`

/** Records that its stop tap ran, in a global the test reads. */
const STOP_WITNESS = `module.exports = { name: 'stop-witness', create({ hooks }) {
  hooks.stop.tapPromise('stop-witness', async () => { globalThis.udsuStopWitness = (globalThis.udsuStopWitness ?? 0) + 1 })
} }\n`

/** A look-alike Veto from another copy of udsu: another class, the same registered brand. */
const THEIR_VETO = `class Veto extends Error { constructor(reason) { super(reason); this[Symbol.for('udsu.veto')] = true } }\n`

const witness = globalThis as { udsuStopWitness?: number }

/** A client of plugin modules written to a temp dir (name → source); `none` frontend, silent logs. */
function clientOf(
  plugins: Record<string, string>,
  extra: Partial<Config> = {},
): { client: Client; problems: Problem[] } {
  const dir = tempDir('udsu-lifecycle-test-')
  writeFiles(dir, Object.fromEntries(Object.entries(plugins).map(([name, source]) => [`${name}.js`, source])))
  const client = new Client(
    {
      ...DEFAULT_CONFIG,
      frontend: 'none',
      name: 'alice',
      profile: path.join(dir, 'profile'),
      plugins: Object.keys(plugins).map((name) => ({ resolve: path.join(dir, `${name}.js`), options: {} })),
      ...extra,
    },
    { logger: createLogger('silent') },
  )
  const problems: Problem[] = []
  client.hooks.problem.tap('test', (problem) => void problems.push(problem))
  return { client, problems }
}

describe('core/client: plugin failures', () => {
  beforeEach(() => (witness.udsuStopWitness = 0))
  afterEach(removeTempDirs)

  for (const step of ['configure', 'init', 'start'] as const) {
    it(`a tap that throws on ${step} fails the start, naming plugin, step and cause, after stop ran`, async () => {
      const breaks = `module.exports = { name: 'breaks', create({ hooks }) {
        hooks.${step}.tapPromise('breaks', async () => { throw new Error('the disk is full\\n  (second line)') })
      } }\n`
      const { client } = clientOf({ 'stop-witness': STOP_WITNESS, 'fake-identity': FAKE_IDENTITY, breaks })
      const error = await rejection(client.start())
      expect(error).to.be.instanceOf(PluginFailure)
      expect(error.message).to.equal(`plugin "breaks" failed at ${step}: the disk is full (second line)`)
      expect(witness.udsuStopWitness).to.equal(1)
      expect(client.running).to.equal(false)
    })
  }

  it('a start tap that rejects with a bare string fails the start too', async () => {
    const breaks = `module.exports = { name: 'breaks', create({ hooks }) { hooks.start.tapPromise('breaks', () => Promise.reject('nope')) } }\n`
    const error = await rejection(clientOf({ 'fake-identity': FAKE_IDENTITY, breaks }).client.start())
    expect(error.message).to.equal('plugin "breaks" failed at start: nope')
  })

  it('a plugin whose create throws fails the start, named', async () => {
    const breaks = `module.exports = { name: 'breaks', create() { throw new Error('bad wiring') } }\n`
    const error = await rejection(clientOf({ 'fake-identity': FAKE_IDENTITY, breaks }).client.start())
    expect(error).to.be.instanceOf(PluginFailure)
    expect(error.message).to.equal('plugin "breaks" failed at create: bad wiring')
  })

  it('Cancelled on configure (a person backing out) passes through as it is, from any copy', async () => {
    const ours = `module.exports = { name: 'leaves', create({ hooks }) { hooks.configure.tapPromise('leaves', async () => { throw globalThis.udsuCancel }) } }\n`
    ;(globalThis as { udsuCancel?: unknown }).udsuCancel = new Cancelled('left at the start screen')
    expect(isCancelled(await rejection(clientOf({ leaves: ours }).client.start()))).to.equal(true)
    const theirs = `class Cancelled extends Error { constructor() { super('bye'); this[Symbol.for('udsu.veto')] = true; this[Symbol.for('udsu.cancelled')] = true } }
      module.exports = { name: 'leaves', create({ hooks }) { hooks.configure.tapPromise('leaves', async () => { throw new Cancelled() }) } }\n`
    const error = await rejection(clientOf({ leaves: theirs }).client.start())
    expect(isCancelled(error)).to.equal(true)
    expect(error).to.not.be.instanceOf(PluginFailure)
  })

  it('says "add rsa" only when no plugin provides encryption', async () => {
    const silent = `module.exports = { name: 'silent-crypto', provides: ['encryption'], create() {} }\n`
    const named = await rejection(clientOf({ 'silent-crypto': silent }).client.start())
    expect(named.message).to.equal('no identity key was set at init, although "silent-crypto" provides encryption')
    const none = await rejection(
      clientOf({ other: `module.exports = { name: 'other', create() {} }\n` }).client.start(),
    )
    expect(none.message).to.equal('no plugin provided an identity key: add "rsa" to the plugins in the config')
  })

  describe('on the message path', () => {
    it("stops a message vetoed by another copy's Veto; the error carries the reason, id and to", async () => {
      const filter = `${THEIR_VETO}module.exports = { name: 'filter', create({ hooks }) {
        hooks.compose.tapPromise('filter', async (m) => { if (m.text.includes('darn')) throw new Veto('no swearing'); return m })
      } }\n`
      const { client } = clientOf({ 'fake-identity': FAKE_IDENTITY, filter })
      await client.start()
      try {
        const error = await rejection(client.send('bob', 'well darn it'))
        expect(error).to.be.instanceOf(MessageRefused)
        expect(isVeto(error)).to.equal(true)
        expect(error.message).to.equal('no swearing')
        expect(error).to.include({ to: 'bob' })
        expect((error as MessageRefused).id).to.match(/^[0-9a-f]{32}$/)
      } finally {
        await client.stop()
      }
    })

    it('stops a message when a compose tap throws anything else, and reports the plugin by name', async () => {
      const buggy = `module.exports = { name: 'buggy', create({ hooks }) { hooks.compose.tapPromise('buggy', async (m) => m.nothing.here) } }\n`
      const { client, problems } = clientOf({ 'fake-identity': FAKE_IDENTITY, buggy })
      await client.start()
      try {
        const error = await rejection(client.send('bob', 'hello'))
        expect(error.message).to.equal('not sent: the plugin "buggy" failed while checking it')
        expect(error).to.include({ to: 'bob' })
        expect(problems.map((p) => p.source)).to.deep.equal(['buggy'])
        expect(problems[0].message).to.match(
          /^plugin "buggy" failed in hook compose: Cannot read properties of undefined/,
        )
      } finally {
        await client.stop()
      }
    })

    it('reports a tap that throws or hangs by name and goes on without it', async () => {
      const flaky = `module.exports = { name: 'flaky', create({ hooks }) {
        hooks.listPeers.tapPromise('flaky', () => new Promise(() => undefined))
        hooks.peerDiscovered.tap('flaky', () => { throw new Error('oops') })
      } }\n`
      const { client, problems } = clientOf({ 'fake-identity': FAKE_IDENTITY, flaky }, { hookTimeoutMs: 100 })
      await client.start()
      try {
        expect(await client.peers()).to.deep.equal([])
        client.hooks.peerDiscovered.call({ name: 'bob', online: true })
        expect(problems.map((p) => p.message)).to.deep.equal([
          'plugin "flaky" failed in hook listPeers: did not finish within 100 ms (hookTimeoutMs); the client went on without it',
          'plugin "flaky" failed in hook peerDiscovered: oops',
        ])
      } finally {
        await client.stop()
      }
    })
  })

  it('treats callback-style taps alike: a refusal stops the message, a callback never called times out', async () => {
    const callbacks = `${THEIR_VETO}module.exports = { name: 'callbacks', create({ hooks }) {
      hooks.compose.tapAsync('callbacks', (m, done) => done(m.text.includes('darn') ? new Veto('no swearing') : null, m))
      hooks.listPeers.tapAsync('callbacks', () => undefined)
    } }\n`
    const { client, problems } = clientOf({ 'fake-identity': FAKE_IDENTITY, callbacks }, { hookTimeoutMs: 100 })
    await client.start()
    try {
      const error = await rejection(client.send('bob', 'darn'))
      expect(error).to.include({ message: 'no swearing', to: 'bob' })
      expect(await client.peers()).to.deep.equal([])
      expect(problems.map((p) => p.message)).to.deep.equal([
        'plugin "callbacks" failed in hook listPeers: did not finish within 100 ms (hookTimeoutMs); the client went on without it',
      ])
    } finally {
      await client.stop()
    }
  })

  it('recognises a refusal by its brand, not by its class', () => {
    expect(isVeto(new Veto('no'))).to.equal(true)
    expect(isVeto(new Cancelled())).to.equal(true)
    expect(isVeto(Object.assign(new Error('theirs'), { [Symbol.for('udsu.veto')]: true }))).to.equal(true)
    expect(isVeto(new Error('a crash'))).to.equal(false)
    expect(isVeto(Object.assign(new Error('half-hearted'), { [Symbol.for('udsu.veto')]: 'yes' }))).to.equal(false)
    expect(isVeto(undefined)).to.equal(false)
    expect(isCancelled(new Veto('no'))).to.equal(false)
  })
})
