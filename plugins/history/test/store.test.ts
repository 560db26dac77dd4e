// The SQLite store on a real file: durability settings, merge by (sender, id), pages, unread counts, states, migrations, search.
import { expect } from 'chai'
import * as fs from 'node:fs'
import Database from 'better-sqlite3'
import { SCHEMA_VERSION, SqliteHistoryStore } from '../store'
import { ftsQuery, matchRanges } from '../search'
import { cleanupProfiles, message, openTempStore } from './support'

describe('history store (SQLite)', () => {
  after(cleanupProfiles)

  it('opens in WAL mode with synchronous=FULL and the current schema version', () => {
    const store = openTempStore()
    store.close()
    const db = new Database(store.file, { readonly: true })
    expect(db.pragma('journal_mode', { simple: true })).to.equal('wal')
    expect(db.pragma('user_version', { simple: true })).to.equal(SCHEMA_VERSION)
    db.close()
    const reopened = new SqliteHistoryStore(store.file)
    expect((reopened as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true })).to.equal(2) // FULL
    reopened.close()
  })

  it('keeps the database and its -wal and -shm files 0600 from their creation, whatever the umask', () => {
    const umask = process.umask(0o022)
    try {
      const store = openTempStore()
      store.append(message('bob', false, 'private'))
      const modes = ['', '-wal', '-shm'].map((suffix) => [
        suffix || 'db',
        (fs.statSync(store.file + suffix).mode & 0o777).toString(8),
      ])
      store.close()
      expect(modes).to.deep.equal([
        ['db', '600'],
        ['-wal', '600'],
        ['-shm', '600'],
      ])
    } finally {
      process.umask(umask)
    }
  })

  it('tightens a database and a leftover -wal that an earlier version left readable by others', () => {
    const store = openTempStore()
    store.append(message('bob', false, 'private'))
    store.close()
    fs.chmodSync(store.file, 0o644)
    fs.writeFileSync(`${store.file}-wal`, '', { mode: 0o644 })
    fs.chmodSync(`${store.file}-wal`, 0o644)
    const reopened = new SqliteHistoryStore(store.file)
    const modes = [store.file, `${store.file}-wal`].map((file) => (fs.statSync(file).mode & 0o777).toString(8))
    reopened.close()
    expect(modes).to.deep.equal(['600', '600'])
  })

  it('refuses a database of a newer schema, and leaves it untouched', () => {
    const store = openTempStore()
    store.append(message('bob', false, 'kept'))
    store.close()
    const db = new Database(store.file)
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    db.close()
    expect(() => new SqliteHistoryStore(store.file)).to.throw(/schema version 2; this udsu knows up to 1: update udsu/)
    const check = new Database(store.file, { readonly: true })
    expect(check.prepare('SELECT count(*) AS n FROM messages').get()).to.deep.equal({ n: 1 })
    check.close()
  })

  it('stores a message once per sender and id, and keeps its owner', () => {
    const store = openTempStore()
    const m = message('bob', false, 'hello')
    expect(store.append(m)).to.equal(true)
    expect(store.append({ ...m, text: 'changed' })).to.equal(false)
    expect(store.page('bob').map((x) => x.text)).to.deep.equal(['hello'])
    // Ids are unique per sender: carol may use bob's id.
    expect(store.append({ ...m, from: 'carol', peer: 'carol' })).to.equal(true)
    expect(() => store.setOwner('mallory')).to.throw(/history of "alice", not "mallory"/)
    store.close()
  })

  it('pages a conversation oldest first, the latest or those before a message', () => {
    const store = openTempStore()
    const all = Array.from({ length: 120 }, (_, i) => message('bob', i % 2 === 0, `n${i}`))
    for (const m of all) store.append(m)
    store.append(message('carol', false, 'other conversation'))
    const last = store.page('bob', { limit: 50 })
    expect(last.map((m) => m.text)).to.deep.equal(all.slice(70).map((m) => m.text))
    const before = store.page('bob', { limit: 50, before: last[0].id })
    expect(before.map((m) => m.text)).to.deep.equal(all.slice(20, 70).map((m) => m.text))
    expect(store.page('bob', { limit: 50, before: before[0].id }).map((m) => m.text)).to.deep.equal(
      all.slice(0, 20).map((m) => m.text),
    )
    expect(() => store.page('bob', { before: 'nope' })).to.throw(/no message "nope" in the conversation with bob/)
    expect(() => store.page('bob', { limit: 0 })).to.throw(/limit must be/)
    store.close()
  })

  it('counts unread received messages per conversation until marked read; the latest message leads', () => {
    const store = openTempStore()
    store.append(message('bob', false, 'b1'))
    store.append(message('bob', true, 'mine'))
    store.append(message('bob', false, 'b2'))
    store.append(message('carol', false, 'c1'))
    expect(store.conversations().map((c) => [c.peer, c.unread, c.last?.text])).to.deep.equal([
      ['carol', 1, 'c1'],
      ['bob', 2, 'b2'],
    ])
    store.markRead('bob')
    expect(store.conversations().find((c) => c.peer === 'bob')?.unread).to.equal(0)
    store.close()
  })

  it("follows one's own message pending → sent → delivered, and never back from delivered", () => {
    const store = openTempStore()
    const m = { ...message('bob', true, 'mine'), state: 'pending' as const }
    store.append(m)
    const state = () => store.page('bob')[0].state
    expect(state()).to.equal('pending')
    store.setState(m.id, 'sent')
    expect(state()).to.equal('sent')
    store.setState(m.id, 'failed')
    expect(state()).to.equal('failed')
    store.setState(m.id, 'delivered')
    expect(state()).to.equal('delivered')
    store.setState(m.id, 'pending') // a restored outbox reports pending again at start
    expect(state()).to.equal('delivered')
    store.close()
  })

  describe('search', () => {
    let store: SqliteHistoryStore
    before(() => {
      store = openTempStore()
      for (const [peer, text] of [
        ['bob', 'Привет, как дела? Ёлка стоит'],
        ['bob', '東京タワーに行きました'],
        ['bob', 'party tonight 🎉 bring snacks'],
        ['carol', 'the café is closed'],
        ['carol', 'Hello hello HELLO'],
        ['carol', 'hello once'],
        ['dmitri', 'ПРИВЕТ из Москвы'],
        ['bob', '你好世界'],
      ] as const) {
        store.append(message(peer, false, text))
      }
    })
    after(() => store.close())
    const texts = (query: string, peer?: string) => store.search(query, { peer }).map((h) => h.message.text)

    it('finds Cyrillic words in any case, with ё and е alike', () => {
      expect(texts('привет')).to.have.members(['Привет, как дела? Ёлка стоит', 'ПРИВЕТ из Москвы'])
      expect(texts('елка')).to.deep.equal(['Привет, как дела? Ёлка стоит'])
    })

    it('finds Chinese and Japanese words without spaces, and emoji', () => {
      expect(texts('東京')).to.deep.equal(['東京タワーに行きました'])
      expect(texts('タワー')).to.deep.equal(['東京タワーに行きました'])
      expect(texts('世界')).to.deep.equal(['你好世界'])
      expect(texts('🎉')).to.deep.equal(['party tonight 🎉 bring snacks'])
      expect(texts('京東')).to.deep.equal([]) // the characters in another order are another word
    })

    it('matches words by prefix from three letters, Latin diacritics folded', () => {
      expect(texts('cafe')).to.deep.equal(['the café is closed'])
      expect(texts('toni')).to.deep.equal(['party tonight 🎉 bring snacks'])
      expect(texts('pa')).to.deep.equal([])
    })

    it('ranks the message with more matches first, and limits to one conversation', () => {
      expect(texts('hello')).to.deep.equal(['Hello hello HELLO', 'hello once'])
      expect(texts('привет', 'dmitri')).to.deep.equal(['ПРИВЕТ из Москвы'])
    })

    it('takes operators and quotes as plain words', () => {
      expect(texts('"hello" OR NEAR(x) *')).to.deep.equal([])
      expect(texts('hello AND')).to.deep.equal([])
      expect(ftsQuery('?? !!')).to.equal(undefined)
      expect(texts('?? !!')).to.deep.equal([])
    })

    it('reports where each word matched, as UTF-16 ranges of the original text', () => {
      const hit = store.search('елка привет')[0]
      expect(hit.matches.map(([s, e]) => hit.message.text.slice(s, e))).to.deep.equal(['Привет', 'Ёлка'])
      expect(matchRanges('a 🎉 b café', '🎉 cafe').map(([s, e]) => 'a 🎉 b café'.slice(s, e))).to.deep.equal([
        '🎉',
        'café',
      ])
      expect(matchRanges('unhello hello', 'hello')).to.deep.equal([[8, 13]])
    })
  })
})
