// @ts-check
// The filter as its users see it: what the other side receives, and what is refused, between two clients on loopback.
const path = require('node:path')
const { expect } = require('chai')
const { isVeto } = require('udsu')
const { createTestNetwork } = require('udsu/testing')
const bannedWords = require('..')

const PLUGIN = path.join(__dirname, '..')
const OPTIONS = { words: ['darn', 'heck'], mask: '#', block: 'password\\s*[:=]' }

describe('udsu-plugin-banned-words', function () {
  /** @type {import('udsu/testing').TestNetwork} */
  let net
  beforeEach(async () => {
    net = await createTestNetwork()
  })
  afterEach(() => net.close())

  it('masks banned words, whole words in any case, in what the other side receives', async () => {
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: OPTIONS }] })
    const bob = await net.client('bob')
    const sent = await ann.send('bob', 'Darn it, what the HECK is darned? check it')
    expect(sent.text).to.equal('#### it, what the #### is darned? check it')
    expect((await bob.next('message')).text).to.equal('#### it, what the #### is darned? check it')
  })

  it('masks banned words in what it receives from a client without the filter', async () => {
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: OPTIONS }] })
    const bob = await net.client('bob')
    await bob.send('ann', 'oh heck, darn')
    expect((await ann.next('message')).text).to.equal('oh ####, ####')
  })

  it('refuses to send a message that matches the blocked pattern, with a Veto that says why', async () => {
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: OPTIONS }] })
    const bob = await net.client('bob')
    const refusal = await ann.send('bob', 'my Password: hunter2').then(
      () => undefined,
      (error) => error,
    )
    expect(isVeto(refusal), String(refusal)).to.equal(true)
    expect(refusal.message).to.equal('not sent: the message matches the blocked pattern')
    await ann.send('bob', 'nothing secret')
    // Messages to a peer arrive in order: the first bob gets is the one after the refusal.
    expect((await bob.next('message')).text).to.equal('nothing secret')
  })

  it('does not show an incoming message that matches the blocked pattern, and says so', async () => {
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: OPTIONS }] })
    const bob = await net.client('bob')
    const refused = await bob.send('ann', 'password = hunter2')
    await bob.send('ann', 'after that')
    expect((await ann.next('message')).text).to.equal('after that')
    // Refused by ann's filter, not lost: bob's copy is delivered, so it is not sent again and again.
    await bob.next('state', (s) => s.id === refused.id && s.state === 'delivered')
    expect(await ann.next('info', (i) => i.source === 'banned-words')).to.deep.equal({
      source: 'banned-words',
      text: 'a message from bob matched the blocked pattern and is not shown',
    })
  })

  it('names every bad option', () => {
    const check = /** @type {(raw: unknown) => unknown} */ (bannedWords.options)
    expect(check({ words: ['two words'], mask: '##', block: '(' })).to.deep.equal({
      problems: [
        'words[0] must be one word, not "two words"',
        'mask must be one character, not "##"',
        'block is not a valid regular expression: Invalid regular expression: /(/iu: Unterminated group',
      ],
    })
  })
})
