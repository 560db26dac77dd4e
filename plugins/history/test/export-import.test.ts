// Export and import on real stores: round trips and merges as properties (fast-check), sealed files, and the HTML escape.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import fc from 'fast-check'
import type { StoredMessage } from '../../../core/services'
import type { MessageState } from '../../../core/types'
import { exportHistory, type ExportFormat } from '../export'
import { importFile, ImportError } from '../import'
import type { SqliteHistoryStore } from '../store'
import { cleanupProfiles, message, openTempStore, snapshot, tempProfile } from './support'

const MAX_BYTES = 64 * 1024 * 1024
const PEERS = ['bob', 'carol', 'дмитрий', '李']
const STATES: MessageState[] = ['pending', 'sent', 'delivered', 'failed']

/** A history: messages with distinct (sender, id), any Unicode text, times that may repeat. */
const historyArbitrary = fc
  .array(
    fc.record({
      peer: fc.constantFrom(...PEERS),
      out: fc.boolean(),
      state: fc.constantFrom(...STATES),
      text: fc.string({ unit: 'grapheme', maxLength: 40 }),
      sent: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      received: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    }),
    { maxLength: 40 },
  )
  .map((drafts) =>
    drafts.map((d, i): StoredMessage => {
      const m: StoredMessage = {
        id: `id${i}`,
        from: d.out ? 'alice' : d.peer,
        to: d.out ? d.peer : 'alice',
        text: d.text,
        ts: d.sent,
        peer: d.peer,
        out: d.out,
        storedAt: d.received,
      }
      if (d.out) m.state = d.state
      return m
    }),
  )

function fill(messages: StoredMessage[]): SqliteHistoryStore {
  const store = openTempStore()
  for (const m of messages) store.append(m)
  return store
}

async function exportToFile(
  store: SqliteHistoryStore,
  options: { format?: ExportFormat; since?: number; until?: number; peer?: string; passphrase?: string } = {},
): Promise<string> {
  const file = path.join(tempProfile(), `export.${options.format ?? 'json'}`)
  await exportHistory(store, { format: 'json', ...options, out: file })
  return file
}

/** Messages only: unread counts are not part of an export (imported messages are old, not unread). */
const messagesOf = (store: SqliteHistoryStore) => snapshot(store).messages

describe('history export and import', function () {
  this.timeout(120_000)
  after(cleanupProfiles)

  it('export → import into an empty profile gives the identical history (property)', async () => {
    await fc.assert(
      fc.asyncProperty(historyArbitrary, async (messages) => {
        const source = fill(messages)
        const file = await exportToFile(source)
        const target = openTempStore(undefined)
        const report = await importFile(target, file, { maxBytes: MAX_BYTES })
        expect(report).to.include({ kind: 'udsu', added: messages.length, skipped: 0 })
        expect(messagesOf(target)).to.deep.equal(messagesOf(source))
        expect(target.owner()).to.equal('alice')
        source.close()
        target.close()
      }),
      { numRuns: 25 },
    )
  })

  it('two overlapping exports merge into the whole history, nothing twice; importing again changes nothing (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        historyArbitrary,
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        async (messages, a, b) => {
          const [low, high] = a < b ? [a, b] : [b, a]
          const source = fill(messages)
          const early = await exportToFile(source, { until: high })
          const late = await exportToFile(source, { since: low })
          const target = openTempStore()
          const first = await importFile(target, early, { maxBytes: MAX_BYTES })
          const second = await importFile(target, late, { maxBytes: MAX_BYTES })
          const overlap = messages.filter((m) => m.storedAt >= low && m.storedAt <= high).length
          expect(second.skipped).to.equal(overlap)
          expect(first.added + second.added).to.equal(messages.length)
          expect(messagesOf(target)).to.deep.equal(messagesOf(source))
          const before = snapshot(target)
          const again = await importFile(target, late, { maxBytes: MAX_BYTES })
          expect([again.added, again.skipped, again.refused]).to.deep.equal([
            0,
            messages.filter((m) => m.storedAt >= low).length,
            [],
          ])
          expect(snapshot(target)).to.deep.equal(before)
          source.close()
          target.close()
        },
      ),
      { numRuns: 20 },
    )
  })

  it('exports one conversation, or a time window', async () => {
    const store = openTempStore()
    const messages = [
      message('bob', false, 'b1', 1000),
      message('carol', false, 'c1', 2000),
      message('bob', true, 'b2', 3000),
    ]
    for (const m of messages) store.append(m)
    const only = (file: string) =>
      (JSON.parse(fs.readFileSync(file, 'utf8')) as { messages: Array<{ text: string }> }).messages.map((m) => m.text)
    expect(only(await exportToFile(store, { peer: 'bob' }))).to.deep.equal(['b1', 'b2'])
    expect(only(await exportToFile(store, { since: 1500, until: 2500 }))).to.deep.equal(['c1'])
    store.close()
  })

  it('writes an html export with every text escaped and no script element', async () => {
    const store = openTempStore()
    store.append(message('bob', false, '<script>alert(1)</script>'))
    store.append(message('bob', true, '<img src=x onerror="alert(2)"> & "quotes" \'too\''))
    const html = fs.readFileSync(await exportToFile(store, { format: 'html' }), 'utf8')
    expect(html).to.not.match(/<script/i)
    expect(html).to.not.match(/<img/i)
    expect(html).to.include('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).to.include('&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &quot;quotes&quot; &#39;too&#39;')
    expect(html).to.include('Content-Security-Policy" content="default-src \'none\'')
    store.close()
  })

  it('writes a text export for people, one conversation after another', async () => {
    const store = openTempStore()
    store.append(message('bob', false, 'first line\nsecond line', Date.UTC(2026, 10, 29, 10, 4)))
    store.append(message('bob', true, 'reply', Date.UTC(2026, 10, 29, 10, 5)))
    const text = fs.readFileSync(await exportToFile(store, { format: 'txt' }), 'utf8')
    expect(text).to.match(/^udsu history of alice\n/)
    expect(text).to.include(
      '── bob ──\n2026-11-29 10:04 bob: first line\n      second line\n2026-11-29 10:05 alice: reply ✓✓\n',
    )
    store.close()
  })

  it('seals an export with a passphrase; import opens it with the same one only', async () => {
    const store = fill([message('bob', false, 'secret words')])
    const file = await exportToFile(store, { passphrase: 'correct horse' })
    expect(fs.readFileSync(file, 'utf8')).to.not.include('secret words')
    const target = openTempStore()
    const wrong = await importFile(target, file, { maxBytes: MAX_BYTES, passphrase: async () => 'wrong' }).catch(
      (e: Error) => e,
    )
    expect(wrong).to.be.instanceOf(ImportError)
    expect((wrong as Error).message).to.match(/wrong passphrase, or the file was changed/)
    expect(messagesOf(target)).to.deep.equal([])
    await importFile(target, file, { maxBytes: MAX_BYTES, passphrase: async () => 'correct horse' })
    expect(messagesOf(target)).to.deep.equal(messagesOf(store))
    store.close()
    target.close()
  })
})
