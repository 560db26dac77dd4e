// Delivered messages leave reliable's journals at once: the sender's outbox record once the peer acknowledged it, the
// receiver's inbox record once the app has it; not only at the next start's compaction. Both clients keep running.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { DurableState, INBOX_FILE, OUTBOX_FILE } from '../durable'
import { useNetwork, type TestClient } from './clients'

const journalText = (client: TestClient) =>
  [OUTBOX_FILE, INBOX_FILE].map((file) => fs.readFileSync(path.join(client.profile, file), 'utf8')).join('')

describe('reliable: delivered plaintext in the journals', function () {
  this.timeout(60_000)
  const network = useNetwork()

  it('blanks a message in both journals once delivered, keeping its id, and the journals still read back', async () => {
    const alice = await network.start('alice')
    const bob = await network.start('bob')

    const secrets = ['the first secret', 'the second secret', 'ünïcödé 秘密 🔑']
    const sent = []
    for (const text of secrets) sent.push(await alice.client.send('bob', text))
    // A message bob holds for an offline peer stays until delivered.
    const waiting = await bob.client.send('carol', 'for carol, not yet delivered')
    for (const message of sent)
      await alice.until('delivered', () => alice.states.some((s) => s.id === message.id && s.state === 'delivered'))
    await bob.until('all three', () => bob.delivered.length === secrets.length)
    // Its ACK leaves only once bob's app has every message, so bob has marked them shown by now.

    for (const client of [alice, bob]) {
      const text = journalText(client)
      for (const secret of secrets)
        expect(text, `${client.name}'s journals`).not.to.include(JSON.stringify(secret).slice(1, -1))
    }
    expect(journalText(bob)).to.include('for carol, not yet delivered')
    expect(waiting.to).to.equal('carol')

    // The blanked records still read: bob still knows the ids (no second delivery after a restart).
    await bob.client.stop()
    const reopened = DurableState.open(bob.profile, { seenIdsPerPeer: 100, seenIdsTotal: 1000, compactBytes: 1 << 20 })
    for (const message of sent) expect(reopened.seen('alice', message.id)).to.equal(true)
    expect(reopened.outboxEntries().map((e) => e.peer)).to.deep.equal(['carol'])
    await reopened.close()
  })
})
