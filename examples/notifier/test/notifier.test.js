// @ts-check
// The notifier as its user sees it: the file gets a line per message received, once the message is delivered.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { expect } = require('chai')
const { createTestNetwork } = require('udsu/testing')
const notifier = require('..')

const PLUGIN = path.join(__dirname, '..')

describe('udsu-plugin-notifier', function () {
  /** @type {import('udsu/testing').TestNetwork} */
  let net
  /** @type {string} */
  let dir
  beforeEach(async () => {
    net = await createTestNetwork()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-notifier-'))
  })
  afterEach(async () => {
    await net.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('appends one text line per message received, in order', async () => {
    const file = path.join(dir, 'inbox.log')
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: { file } }] })
    const bob = await net.client('bob')
    await bob.send('ann', 'first')
    await bob.send('ann', 'two\nlines')
    // deliver's taps run before the message counts as delivered: once the test sees both, the file has both lines.
    await ann.next('message', (m) => m.text === 'first')
    await ann.next('message', (m) => m.text === 'two\nlines')
    const lines = fs.readFileSync(file, 'utf8').split('\n')
    expect(lines).to.have.length(3)
    expect(lines[0]).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z bob: first$/)
    expect(lines[1]).to.match(/ bob: two ⏎ lines$/)
    expect(lines[2]).to.equal('')
  })

  it('writes JSON lines when asked', async () => {
    const file = path.join(dir, 'inbox.jsonl')
    const ann = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: { file, format: 'json' } }] })
    const bob = await net.client('bob')
    const sent = await bob.send('ann', 'hello')
    await ann.next('message')
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({ from: 'bob', text: 'hello', ts: sent.ts })
  })

  it("stops the client at start when the file's directory does not exist, saying which", async () => {
    const file = path.join(dir, 'missing', 'inbox.log')
    const failure = await net.client('ann', { plugins: [{ resolve: PLUGIN, options: { file } }] }).then(
      () => undefined,
      (error) => error,
    )
    expect(String(failure?.message)).to.equal(
      `plugin "notifier" failed at init: the directory of ${file} does not exist: create it, or set notifier's file option to another path`,
    )
  })

  it('names every bad option', () => {
    const check = /** @type {(raw: unknown) => unknown} */ (notifier.options)
    expect(check({ file: ' ', format: 'jsno' })).to.deep.equal({
      problems: [
        'file must name a file, not " "',
        'format must be one of text, json, not "jsno" (did you mean "json"?)',
      ],
    })
  })
})
