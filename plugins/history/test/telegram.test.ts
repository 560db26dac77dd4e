// A Telegram Desktop export of a personal chat (a fixture written from the documented format) imported into history.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { importFile, ImportError } from '../import'
import { cleanupProfiles, openTempStore, snapshot, tempProfile } from './support'

/** The fixture lives beside the sources; the tests run from dist/. */
const FIXTURE = path.resolve(__dirname, '../../../../plugins/history/test/fixtures/telegram-result.json')
const MAX_BYTES = 1024 * 1024

describe('history import of a Telegram Desktop export', () => {
  after(cleanupProfiles)

  it('maps the partner to --peer and everyone else to the owner, with formatting, edits, replies, media and service messages', async () => {
    const store = openTempStore()
    const report = await importFile(store, FIXTURE, { maxBytes: MAX_BYTES, peer: 'bob' })
    expect(report).to.include({ kind: 'telegram', added: 9, skipped: 0 })
    expect(report.refused).to.deep.equal([
      { at: '$.messages[9]', reason: 'a message with no text and no media udsu can show' },
      { at: '$.messages[10]', reason: 'a Telegram entry of type "unsupported_thing", which udsu does not know' },
    ])
    const page = store.page('bob')
    expect(page.map((m) => [m.from, m.text])).to.deep.equal([
      ['bob', 'Привет! Can you fix it?'],
      [
        'alice',
        '[reply to bob: "Привет! Can you fix it?"]\nYes we can, see the plan (https://example.org/plan) and https://example.org\n[edited 2024-03-01 09:03 UTC]',
      ],
      ['bob', '[photo]\nthe wall 🧱'],
      ['bob', '[sticker 👍]'],
      ['alice', '[voice message, 1:05]'],
      ['alice', '[forwarded from Wendy]\n東京で会いましょう'],
      ['bob', '[call, 2:05]'],
      ['alice', '[missed call]'],
      ['alice', '[pinned: "[photo]\nthe wall 🧱"]'.replace('\n', ' ')],
    ])
    expect(page[0]).to.include({
      id: 'telegram-5550001-101',
      to: 'alice',
      out: false,
      ts: 1709283600000,
      storedAt: 1709283600000,
    })
    expect(page[1]).to.include({ out: true, state: 'delivered', to: 'bob' })
    expect(store.search('東京').map((h) => h.message.id)).to.deep.equal(['telegram-5550001-106'])
    // Imported messages are old: they are not unread.
    expect(store.conversations()).to.have.length(1)
    expect(store.conversations()[0].unread).to.equal(0)

    const again = await importFile(store, FIXTURE, { maxBytes: MAX_BYTES, peer: 'bob' })
    expect([again.added, again.skipped]).to.deep.equal([0, 9])
    store.close()
  })

  it('needs --peer, and refuses group chats and bad dates without changing anything', async () => {
    const store = openTempStore()
    const before = snapshot(store)
    const fail = (file: string, peer?: string) =>
      importFile(store, file, { maxBytes: MAX_BYTES, peer }).then(
        () => undefined,
        (e: Error) => e,
      )
    const noPeer = await fail(FIXTURE)
    expect(noPeer).to.be.instanceOf(ImportError)
    expect(noPeer?.message).to.match(/it is a Telegram chat: say which contact the chat partner is \(--peer NAME/)

    const chat = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as {
      type: string
      messages: Array<Record<string, unknown>>
    }
    const group = path.join(tempProfile(), 'group.json')
    fs.writeFileSync(group, JSON.stringify({ ...chat, type: 'private_group' }))
    expect((await fail(group, 'bob'))?.message).to.match(
      /\$\.type \(line 1, column \d+\) is "private_group": udsu imports personal chats only/,
    )

    chat.messages[2].date_unixtime = 'soon'
    const badDate = path.join(tempProfile(), 'bad-date.json')
    fs.writeFileSync(badDate, JSON.stringify(chat, null, 1))
    expect((await fail(badDate, 'bob'))?.message).to.match(
      /\$\.messages\[2\]\.date_unixtime \(line \d+, column \d+\) has no valid date \("soon"\)/,
    )
    expect(snapshot(store)).to.deep.equal(before)
    store.close()
  })
})
