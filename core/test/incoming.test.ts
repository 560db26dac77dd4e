// The `incoming` hook as a plugin author uses it: rewrite what a peer sent, or refuse it, between real clients on loopback.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { definePlugin, Veto, type ChatMessage, type CoreServices } from '../index'
import { createTestNetwork, type TestNetwork } from '../../testing'

describe('core: incoming messages pass the `incoming` hook before they are stored or shown', function () {
  this.timeout(30_000)
  let net: TestNetwork
  let dir: string
  const globals = globalThis as Record<string, unknown>

  beforeEach(async () => {
    net = await createTestNetwork()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-incoming-'))
  })
  afterEach(async () => {
    await net.close()
    fs.rmSync(dir, { recursive: true, force: true })
    delete globals.__udsuIncomingFilter
  })

  /** Bob with a plugin whose one `incoming` tap is `filter`: a real module, loaded by the client's loader. */
  async function bobFiltering(filter: (message: ChatMessage) => Promise<unknown>) {
    globals.__udsuIncomingFilter = definePlugin<Record<string, never>, Pick<CoreServices, 'hooks'>>({
      name: 'filter',
      create({ hooks }) {
        hooks.incoming.tapPromise('filter', filter as (message: ChatMessage) => Promise<ChatMessage>)
      },
    })
    const file = path.join(dir, 'filter.js')
    fs.writeFileSync(file, 'module.exports = globalThis.__udsuIncomingFilter')
    const alice = await net.client('alice')
    const bob = await net.client('bob', { plugins: [{ resolve: file, options: {} }] })
    return { alice, bob }
  }

  it('shows the text a tap returns; who sent it, its id and time stay as they came', async () => {
    const { alice, bob } = await bobFiltering(async (message) => ({
      ...message,
      text: message.text.toUpperCase(),
      from: 'mallory',
      id: 'ffffffff',
    }))
    const sent = await alice.send('bob', 'quiet please')
    const shown = await bob.next('message')
    expect(shown).to.include({ text: 'QUIET PLEASE', from: 'alice', id: sent.id })
  })

  it('drops a message a tap refuses with Veto: not shown, and its sender still gets the receipt', async () => {
    const { alice, bob } = await bobFiltering(async (message) => {
      if (message.text.includes('spam')) throw new Veto('no spam')
      return message
    })
    const refused = await alice.send('bob', 'buy spam now')
    await alice.next('state', (s) => s.id === refused.id && s.state === 'delivered')
    await alice.send('bob', 'hello')
    expect((await bob.next('message')).text).to.equal('hello')
  })

  it('shows the message as it came when a tap fails, and names the plugin in a problem', async () => {
    const { alice, bob } = await bobFiltering(async () => {
      throw new Error('filter bug')
    })
    await alice.send('bob', 'still here')
    expect((await bob.next('message')).text).to.equal('still here')
    expect((await bob.next('problem', (p) => p.source === 'filter')).message).to.equal(
      'plugin "filter" failed in hook incoming: filter bug',
    )
  })

  it('shows the message as it came when a tap returns something that is not a text', async () => {
    const { alice, bob } = await bobFiltering(async (message) => ({ ...message, text: 42 }))
    await alice.send('bob', 'the original')
    expect((await bob.next('message')).text).to.equal('the original')
    expect((await bob.next('problem', (p) => p.source === 'incoming')).message).to.match(
      /^a plugin rewrote a message from alice into something that is not a text/,
    )
  })
})
