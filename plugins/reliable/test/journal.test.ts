import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { DurableState, EPOCH_FILE, INBOX_FILE, OUTBOX_FILE } from '../durable'
import { Journal, JournalCorrupt } from '../journal'

const LIMITS = { seenIdsPerPeer: 1000, seenIdsTotal: 100_000, compactBytes: 64 * 1024 * 1024 }
const dirs: string[] = []
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-journal-'))
  dirs.push(dir)
  return dir
}
const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
const asRecord = (value: unknown) => value as { n: number }

describe('reliable journal', () => {
  after(() => dirs.splice(0).forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

  it('group-commits records appended in one tick: one write and one fdatasync', async () => {
    const file = path.join(tempDir(), 'j.log')
    const { journal } = Journal.open(file, asRecord)
    const done = Array.from({ length: 1000 }, (_, n) => journal.append({ n }))
    expect(journal.busy).to.equal(true)
    await Promise.all(done)
    expect(journal.stats).to.deep.equal({ commits: 1, records: 1000 })
    expect(journal.busy).to.equal(false)
    await journal.close()
    expect(Journal.open(file, asRecord).records.map((r) => r.n)).to.deep.equal([...Array(1000).keys()])
  })

  it('gathers records appended during a commit into the next one, and sync() waits for all of them', async () => {
    const file = path.join(tempDir(), 'j.log')
    const { journal } = Journal.open(file, asRecord)
    void journal.append({ n: 0 })
    await new Promise((resolve) => setImmediate(resolve)) // the first commit is now in flight
    for (let n = 1; n <= 100; n++) void journal.append({ n })
    await journal.sync()
    expect(journal.stats).to.deep.equal({ commits: 2, records: 101 })
    await journal.close()
  })

  it('drops a torn last line after a crash and cuts it off, so the next record is not glued to it', async () => {
    const file = path.join(tempDir(), 'j.log')
    fs.writeFileSync(file, '{"n":1}\n{"n":2}\n{"n":3')
    const { journal, records } = Journal.open(file, asRecord)
    expect(records.map((r) => r.n)).to.deep.equal([1, 2])
    await journal.append({ n: 4 })
    await journal.close()
    expect(lines(file)).to.deep.equal(['{"n":1}', '{"n":2}', '{"n":4}'])
  })

  it('refuses a corrupt line in the middle with an error naming the file and the line', () => {
    const file = path.join(tempDir(), 'j.log')
    fs.writeFileSync(file, '{"n":1}\n{"n":\n{"n":3}\n')
    let error: unknown
    try {
      Journal.open(file, asRecord)
    } catch (e) {
      error = e
    }
    expect(error).to.be.instanceOf(JournalCorrupt)
    expect((error as Error).message)
      .to.include(file)
      .and.include('line 2')
      .and.include('move the file aside')
  })

  it('compacts at the next commit once over the size limit, from the snapshot', async () => {
    const file = path.join(tempDir(), 'j.log')
    const { journal } = Journal.open(file, asRecord)
    let live = 0
    journal.compactWhenOver(200, () => [{ n: live }])
    for (let n = 0; n < 50; n++) {
      live = n
      await journal.append({ n })
    }
    await journal.close()
    expect(lines(file).length).to.be.lessThan(20)
    expect(lines(file).pop()).to.equal('{"n":49}')
  })
})

describe('reliable durable state', () => {
  it('raises the epoch at every open', async () => {
    const dir = tempDir()
    const epochs: number[] = []
    for (let i = 0; i < 3; i++) {
      const state = DurableState.open(dir, LIMITS)
      epochs.push(state.epoch)
      await state.close()
    }
    expect(epochs).to.deep.equal([1, 2, 3])
    expect(JSON.parse(fs.readFileSync(path.join(dir, EPOCH_FILE), 'utf8'))).to.deep.equal({ epoch: 3 })
  })

  it('keeps the unacknowledged outbox in order across a reopen, and compacts acknowledged entries away', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, LIMITS)
    const envelope = (text: string) => JSON.stringify({ text })
    for (const id of ['a1', 'a2', 'a3']) void state.queue('bob', id, envelope(`to bob ${id}`))
    void state.queue('carol', 'c1', envelope('to carol'))
    state.acknowledged('bob', 'a1')
    await state.sync()
    // No close: a crash keeps only what the journal holds.
    const reopened = DurableState.open(dir, LIMITS)
    expect(reopened.outboxEntries().map(({ peer, id, payload }) => [peer, id, payload.toString()])).to.deep.equal([
      ['bob', 'a2', envelope('to bob a2')],
      ['bob', 'a3', envelope('to bob a3')],
      ['carol', 'c1', envelope('to carol')],
    ])
    expect(lines(path.join(dir, OUTBOX_FILE))).to.have.length(3)
    await reopened.close()
    await state.close()
  })

  it('takes marks that arrive after close (a frontend showing messages as the client stops) without an unhandled rejection', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, LIMITS)
    await state.received('bob', 'm1', Buffer.from('hi'))
    void state.queue('bob', 'a1', JSON.stringify({ id: 'a1' }))
    await state.sync()
    await state.close()
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      state.shown('bob', ['m1'])
      state.acknowledged('bob', 'a1')
      // Node reports an unhandled rejection once the microtasks have run; acks are written at the next tick.
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    expect(unhandled).to.deep.equal([])
  })

  it('writes one ack record per peer and tick, naming the latest, and replays it as covering those queued before', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, LIMITS)
    for (const id of ['a1', 'a2', 'a3', 'a4']) void state.queue('bob', id, JSON.stringify({ id }))
    void state.queue('carol', 'c1', JSON.stringify({ id: 'c1' }))
    await state.sync()
    // Acknowledgements arrive in queue order (a cumulative ACK covers a prefix of the stream).
    state.acknowledged('bob', 'a1')
    state.acknowledged('bob', 'a2')
    state.acknowledged('carol', 'c1')
    await state.sync()
    const records = lines(path.join(dir, OUTBOX_FILE)).map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(records.filter((r) => r.o === 'ack')).to.deep.equal([
      { o: 'ack', p: 'bob', i: 'a2' },
      { o: 'ack', p: 'carol', i: 'c1' },
    ])
    const reopened = DurableState.open(dir, LIMITS)
    expect(reopened.outboxEntries().map(({ peer, id }) => [peer, id])).to.deep.equal([
      ['bob', 'a3'],
      ['bob', 'a4'],
    ])
    await reopened.close()
    await state.close()
  })

  it('remembers received ids, and hands a message back after a restart until it is marked shown', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, LIMITS)
    await state.received('alice', 'm1', Buffer.from('one'))
    await state.received('alice', 'm2', Buffer.from('two'))
    state.shown('alice', ['m1'])
    await state.sync()
    const reopened = DurableState.open(dir, LIMITS)
    expect(reopened.seen('alice', 'm1')).to.equal(true)
    expect(reopened.seen('alice', 'm2')).to.equal(true)
    expect(reopened.seen('bob', 'm1')).to.equal(false)
    expect(reopened.unshownEntries().map((m) => [m.peer, m.id, m.payload.toString()])).to.deep.equal([
      ['alice', 'm2', 'two'],
    ])
    await reopened.close()
    await state.close()
  })

  it('stores outgoing envelopes as JSON and received ones as text, reads the earlier formats, and names a record without an envelope', async () => {
    const dir = tempDir()
    // As JSON.stringify writes it (U+2028 unescaped): stored as JSON, it must read back byte for byte.
    const envelope = JSON.stringify({ type: 'chat', id: 'e1', text: 'héllo "quoted" \u2028 \n', ts: 1 })
    const old = (o: string, i: string) =>
      JSON.stringify({ o, p: 'bob', i, m: Buffer.from(`old ${i}`).toString('base64') })
    const text = (o: string, i: string) => JSON.stringify({ o, p: 'bob', i, t: `text ${i}` })
    fs.writeFileSync(path.join(dir, OUTBOX_FILE), old('add', 'o1') + '\n' + text('add', 'o2') + '\n')
    fs.writeFileSync(path.join(dir, INBOX_FILE), old('recv', 'r1') + '\n')
    const state = DurableState.open(dir, LIMITS)
    await state.queue('bob', 'e1', envelope)
    await state.received('bob', 'r2', Buffer.from(envelope))
    expect(lines(path.join(dir, OUTBOX_FILE))[2]).to.equal(`{"o":"add","p":"bob","i":"e1","e":${envelope}}`)
    expect(JSON.parse(lines(path.join(dir, INBOX_FILE))[1])).to.deep.equal({
      o: 'recv',
      p: 'bob',
      i: 'r2',
      t: envelope,
    })
    const reopened = DurableState.open(dir, LIMITS)
    const expected = [
      ['o1', 'old o1'],
      ['o2', 'text o2'],
      ['e1', envelope],
    ]
    expect(reopened.outboxEntries().map((m) => [m.id, m.payload.toString()])).to.deep.equal(expected)
    expect(reopened.unshownEntries().map((m) => [m.id, m.payload.toString()])).to.deep.equal([
      ['r1', 'old r1'],
      ['r2', envelope],
    ])
    await reopened.close()
    // Compacted at the reopen: still the same entries (the old ones as text, the JSON one as JSON).
    const again = DurableState.open(dir, LIMITS)
    expect(again.outboxEntries().map((m) => [m.id, m.payload.toString()])).to.deep.equal(expected)
    await again.close()
    await state.close()
    fs.appendFileSync(path.join(dir, OUTBOX_FILE), JSON.stringify({ o: 'add', p: 'bob', i: 'x' }) + '\n')
    expect(() => DurableState.open(dir, LIMITS)).to.throw(JournalCorrupt, /"e" \(the envelope\) is missing/)
    fs.writeFileSync(path.join(dir, OUTBOX_FILE), '')
    fs.appendFileSync(path.join(dir, INBOX_FILE), JSON.stringify({ o: 'recv', p: 'bob', i: 'x', e: {} }) + '\n')
    expect(() => DurableState.open(dir, LIMITS)).to.throw(JournalCorrupt, /"t" \(the envelope\) must be a string/)
  })

  it('lets frames out once message records are durable, without waiting for ack and shown records', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, LIMITS)
    let commits = 0
    state.onCommit(() => commits++)
    void state.queue('bob', 'a1', '"one"')
    void state.received('bob', 'r1', Buffer.from('two'))
    const needs = state.mark()
    expect(state.isDurable(needs), 'before the fdatasync').to.equal(false)
    await state.sync()
    expect(state.isDurable(needs)).to.equal(true)
    expect(commits).to.be.at.least(2) // one per journal
    state.acknowledged('bob', 'a1')
    state.shown('bob', ['r1'])
    // The ack and shown records are not on disk yet, and the mark does not wait for them.
    expect(state.busy).to.equal(true)
    expect(state.isDurable(state.mark())).to.equal(true)
    void state.queue('bob', 'a2', '"three"')
    const later = state.mark()
    expect(state.isDurable(later)).to.equal(false)
    expect(state.isDurable(needs), 'an earlier mark stays durable').to.equal(true)
    await state.sync()
    expect(state.isDurable(later)).to.equal(true)
    await state.close()
  })

  it('holds a received message alone as not durable until its fdatasync, and durable after', async () => {
    const state = DurableState.open(tempDir(), LIMITS)
    // Only the inbox has a record: an ACK for this message must wait for the inbox, whatever the outbox holds.
    void state.received('bob', 'r1', Buffer.from('hello'))
    const needs = state.mark()
    expect(state.isDurable(needs), 'before the fdatasync').to.equal(false)
    await state.sync()
    expect(state.isDurable(needs), 'after the fdatasync').to.equal(true)
    await state.close()
  })

  it('bounds the remembered ids per peer, forgetting the oldest', async () => {
    const dir = tempDir()
    const state = DurableState.open(dir, { ...LIMITS, seenIdsPerPeer: 100 })
    for (let i = 0; i < 250; i++) {
      void state.received('alice', `m${i}`, Buffer.from('x'))
      state.shown('alice', [`m${i}`])
    }
    await state.close()
    const reopened = DurableState.open(dir, { ...LIMITS, seenIdsPerPeer: 100 })
    expect(reopened.seen('alice', 'm149')).to.equal(false)
    expect(reopened.seen('alice', 'm150')).to.equal(true)
    expect(reopened.seen('alice', 'm249')).to.equal(true)
    expect(lines(path.join(dir, INBOX_FILE))).to.have.length(100)
    await reopened.close()
  })

  it('names the epoch file when it is unreadable', () => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, EPOCH_FILE), 'garbage')
    expect(() => DurableState.open(dir, LIMITS)).to.throw(path.join(dir, EPOCH_FILE))
  })
})
