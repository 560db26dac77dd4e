// A peer's text with the line breaks JSON leaves raw (U+2028, U+2029, U+0085) stays one event on one line of stdout,
// for readers that split on them too (Python's str.splitlines), and reads back as the same text.
import { expect } from 'chai'
import { cleanupTemp, HeadlessClient, ServerProcess, trackProcesses } from '../../../test/support/processes'

describe('headless: one event per line, whatever a peer sends', function () {
  this.timeout(60_000)
  const track = trackProcesses()
  after(cleanupTemp)

  it('escapes U+2028, U+2029 and U+0085 in what it prints', async () => {
    const server = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    const raw: Buffer[] = []
    bob.child.stdout.on('data', (chunk: Buffer) => raw.push(chunk))
    const text = 'one\u2028two\u2029three\u0085four'
    alice.send({ type: 'send', to: 'bob', text })
    const event = await bob.message(text)
    expect(event.from).to.equal('alice')
    const printed = Buffer.concat(raw).toString('utf8')
    expect(printed).to.include('one\\u2028two\\u2029three\\u0085four')
    // Every line, split as the strictest readers split, is one whole JSON object.
    for (const line of printed
      .split(/\r\n|[\n\r\u0085\u2028\u2029\u000b\u000c\u001c-\u001e]/)
      .filter((l) => l !== '')) {
      expect(() => JSON.parse(line) as unknown, line).not.to.throw()
    }
  })
})
