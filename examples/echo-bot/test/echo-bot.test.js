// @ts-check
// The echo bot as its users see it: two clients on loopback through udsu/testing, the bot loaded from this package.
const path = require('node:path')
const { expect } = require('chai')
const { createTestNetwork } = require('udsu/testing')
const echoBot = require('..')

const PLUGIN = path.join(__dirname, '..')

describe('udsu-plugin-echo-bot', function () {
  /** @type {import('udsu/testing').TestNetwork} */
  let net
  beforeEach(async () => {
    net = await createTestNetwork()
  })
  afterEach(() => net.close())

  it('answers every message with the prefix and the text', async () => {
    await net.client('bot', { plugins: [{ resolve: PLUGIN, options: { prefix: '🤖 ' } }] })
    const ann = await net.client('ann')
    await ann.send('bot', 'hello there')
    const reply = await ann.next('message')
    expect(reply).to.include({ from: 'bot', text: '🤖 hello there' })
  })

  it('stays silent for the users it ignores, and never answers its own prefix', async () => {
    await net.client('bot', { plugins: [{ resolve: PLUGIN, options: { ignore: ['ann'] } }] })
    const ann = await net.client('ann')
    const cy = await net.client('cy')
    const ignored = await ann.send('bot', 'no reply to me')
    await ann.next('state', (s) => s.id === ignored.id && s.state === 'delivered')
    await cy.send('bot', 'echo: already an echo')
    await cy.send('bot', 'reply to me')
    // Messages to one peer arrive in order: the one reply cy gets is to its second message.
    expect((await cy.next('message')).text).to.equal('echo: reply to me')
    // The bot would have replied to ann before it read cy's messages; a short wait covers the reply's trip back.
    const heard = await ann.next('message', undefined, 300).then(
      (m) => m.text,
      () => 'nothing',
    )
    expect(heard).to.equal('nothing')
  })

  it('offers /echo', async () => {
    const bot = await net.client('bot', { plugins: [{ resolve: PLUGIN, options: { prefix: '> ' } }] })
    expect(await bot.command('/echo hi')).to.deep.equal({ info: ['> hi'], errors: [] })
    expect((await bot.command('/echo')).errors).to.deep.equal(['/echo needs some text, e.g. /echo hello'])
  })

  it('names every bad option', () => {
    const check = /** @type {(raw: unknown) => unknown} */ (echoBot.options)
    expect(check({ prefix: ' ', ignore: ['ok', 3] })).to.deep.equal({
      problems: ['prefix must not be blank, not " "', 'ignore[1] must be a string, not number'],
    })
  })
})
