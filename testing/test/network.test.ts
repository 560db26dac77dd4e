// The test network as a plugin author uses it: clients on loopback, events awaited, never slept on.
import { expect } from 'chai'
import { definePlugin, Veto, type CoreServices } from '../../core/plugin'
import { createTestNetwork, type TestNetwork } from '..'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

describe('udsu/testing: createTestNetwork', function () {
  this.timeout(30_000)
  let net: TestNetwork

  beforeEach(async () => {
    net = await createTestNetwork()
  })
  afterEach(() => net.close())

  it('carries a message between two clients and reports it delivered', async () => {
    const alice = await net.client('alice')
    const bob = await net.client('bob')
    const sent = await alice.send('bob', 'hello bob')
    const received = await bob.next('message')
    expect(received).to.include({ from: 'alice', to: 'bob', text: 'hello bob', id: sent.id })
    await alice.next('state', (s) => s.id === sent.id && s.state === 'delivered')
    expect((await alice.next('connected')).peer).to.equal('bob')
  })

  it('keeps events that came before next was called, and hands each out once', async () => {
    const alice = await net.client('alice')
    const bob = await net.client('bob')
    await alice.send('bob', 'one')
    await alice.send('bob', 'two')
    await alice.next('state', (s) => s.state === 'delivered')
    await alice.next('state', (s) => s.state === 'delivered')
    // Both arrived before anyone asked for them; they come out in order, then nothing is left.
    expect((await bob.next('message')).text).to.equal('one')
    expect((await bob.next('message')).text).to.equal('two')
    const error = await bob.next('message', undefined, 200).then(
      () => undefined,
      (e: Error) => e,
    )
    expect(error?.message).to.equal('udsu/testing: bob saw no matching "message" event within 200 ms')
  })

  it('says what it saw when no event matches', async () => {
    const alice = await net.client('alice')
    const bob = await net.client('bob')
    const sent = await bob.send('alice', 'not this one')
    await bob.next('state', (s) => s.id === sent.id && s.state === 'delivered')
    const error = await alice
      .next('message', (m) => m.text === 'never sent', 100)
      .then(
        () => undefined,
        (e: Error) => e,
      )
    expect(error?.message).to.match(
      /^udsu\/testing: alice saw no matching "message" event within 100 ms; unclaimed: \{.*"text":"not this one"/,
    )
  })

  it('loads a plugin by path and runs its slash commands; a refusal rejects send', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-testing-plugin-'))
    const file = path.join(dir, 'shout.js')
    // The plugin is a real module loaded by the client's loader; its body comes from this test through a global.
    const plugin = definePlugin<Record<string, never>, Pick<CoreServices, 'hooks' | 'commands'>>({
      name: 'shout',
      create({ hooks, commands }) {
        commands.register({
          name: 'shout',
          usage: '/shout TEXT',
          description: 'shouts',
          run: (text, out) => out.info(text.toUpperCase()),
        })
        hooks.compose.tapPromise('shout', async (message) => {
          if (message.text === 'whisper') throw new Veto('no whispering')
          return message
        })
      },
    })
    fs.writeFileSync(file, 'module.exports = globalThis.__udsuTestingShout')
    ;(globalThis as Record<string, unknown>).__udsuTestingShout = plugin
    try {
      const alice = await net.client('alice', { plugins: [{ resolve: file, options: {} }] })
      await net.client('bob')
      expect(await alice.command('/shout hey')).to.deep.equal({ info: ['HEY'], errors: [] })
      expect(await alice.next('info', (i) => i.source === '/shout')).to.deep.equal({ source: '/shout', text: 'HEY' })
      expect((await alice.command('/nope')).errors[0]).to.contain('unknown command /nope')
      const refusal = await alice.send('bob', 'whisper').then(
        () => undefined,
        (e: Error) => e,
      )
      expect(refusal?.message).to.equal('no whispering')
    } finally {
      delete (globalThis as Record<string, unknown>).__udsuTestingShout
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
