// Where history lives: the HistoryStore interface, and its SQLite implementation (WAL, synchronous=FULL, FTS5, migrations).
import * as fs from 'node:fs'
import Database from 'better-sqlite3'
import type { ConversationSummary, MessageState, SearchHit, StoredMessage } from '../../core'
import { ftsPhrase, ftsQuery, ftsText, matchRanges, queryTerms, rankByBm25 } from './search'

/** The file in the profile. */
export const HISTORY_FILE = 'history.sqlite'
/** Messages on a page when the caller gives no limit, and the most it may ask for. */
export const DEFAULT_PAGE = 50
export const MAX_PAGE = 1000
/** Search ranks the newest this many matches of a query (see the search statements). */
export const RANKED_MATCHES = 500
/** Messages holding a term are counted up to this many for its weight: past it a word is simply common. */
const DF_CAP = 1000

/** What an import did with each message of a file. */
export interface MergeReport {
  added: number
  /** Already there with the same content (same sender and id). */
  skipped: number
  /** Not taken, each with the reason. */
  refused: Array<{ at: string; reason: string }>
}

/**
 * The storage behind the history plugin: another backend implements this and is passed to the plugin instead.
 * Every method is synchronous and durable when it returns (SQLite commits with an fsync); the service wraps it in promises.
 */
export interface HistoryStore {
  /** The user whose history this is; set once, the first time the plugin opens it. */
  owner(): string | undefined
  setOwner(name: string): void
  /** Stores a message; false (and nothing changed) if one with the same sender and id is already there. */
  append(message: StoredMessage): boolean
  has(sender: string, id: string): boolean
  /** One's own message changed state; `delivered` is final, anything else may follow `failed`. */
  setState(id: string, state: MessageState): void
  /** One's own messages still `pending`, with their recipient (at start: those of earlier runs). */
  pendingOwn(): Array<{ id: string; to: string }>
  page(peer: string, options?: { limit?: number; before?: string }): StoredMessage[]
  search(query: string, options?: { peer?: string; limit?: number }): SearchHit[]
  conversations(): ConversationSummary[]
  markRead(peer: string): void
  /** Every message in storage order (or those of one peer, between two times), in batches, for export. */
  each(filter: ExportFilter, batch: (messages: StoredMessage[]) => void): void
  count(filter?: ExportFilter): number
  /** Adds messages of `owner`'s history in one transaction: all of it or, if anything fails, none. */
  merge(
    messages: Iterable<{ at: string; message: StoredMessage }>,
    owner: string,
    onProgress?: (done: number) => void,
  ): MergeReport
  close(): void
}

export interface ExportFilter {
  peer?: string
  /** Received time bounds, ms, inclusive. */
  since?: number
  until?: number
}

/** Each entry migrates the schema from version (index) to version (index + 1); never edit one that shipped. */
const MIGRATIONS: ReadonlyArray<(db: Database.Database) => void> = [
  (db) =>
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,       -- storage order; also the FTS rowid
        id TEXT NOT NULL,
        peer TEXT NOT NULL,            -- the other side of the conversation
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        out INTEGER NOT NULL,          -- 1: written by the owner
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL,      -- the sender's clock, ms
        received_at INTEGER NOT NULL,  -- this client's clock when stored, ms; conversations are in this order
        state TEXT,                    -- own messages: pending, sent, delivered, failed
        UNIQUE (sender, id)
      );
      CREATE INDEX messages_by_peer ON messages (peer, received_at, seq);
      CREATE INDEX messages_by_time ON messages (received_at, seq);
      CREATE INDEX messages_by_id ON messages (id);
      CREATE TABLE conversations (peer TEXT PRIMARY KEY, unread INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL);
      -- Contentless: the text is read from messages; the indexed form splits CJK and emoji into tokens (search.ts).
      -- peer is indexed too, so that a search in one conversation intersects two index lists instead of joining.
      CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, peer, content='', contentless_delete=1,
        tokenize="unicode61 remove_diacritics 0 categories 'L* N* Co So'"
      );
    `),
]
export const SCHEMA_VERSION = MIGRATIONS.length

interface Row {
  seq: number
  id: string
  peer: string
  sender: string
  recipient: string
  out: number
  text: string
  sent_at: number
  received_at: number
  state: string | null
}

const STATE_ORDER: Record<MessageState, number> = { pending: 0, sent: 1, failed: 1, delivered: 2 }

function toMessage(row: Row): StoredMessage {
  const message: StoredMessage = {
    id: row.id,
    from: row.sender,
    to: row.recipient,
    text: row.text,
    ts: row.sent_at,
    peer: row.peer,
    out: row.out === 1,
    storedAt: row.received_at,
  }
  if (row.state) message.state = row.state as MessageState
  return message
}

export class SqliteHistoryStore implements HistoryStore {
  private readonly db: Database.Database
  private readonly statements: ReturnType<SqliteHistoryStore['prepare']>

  /** Opens (creating, migrating) the database; a newer schema than this code knows is refused, not touched. */
  constructor(
    readonly file: string,
    options: { readonly?: boolean } = {},
  ) {
    if (options.readonly && !fs.existsSync(file)) throw new Error(`no history at ${file}`)
    if (!options.readonly) createPrivately(file)
    this.db = new Database(file, { readonly: options.readonly ?? false })
    try {
      // Another process (a running client, an import) may hold the write lock for a moment: wait rather than fail.
      this.db.pragma('busy_timeout = 5000')
      if (!options.readonly) {
        this.db.pragma('journal_mode = WAL')
        // FULL: every commit is fsync'ed, so what a tap stored before a frontend showed it survives a power loss.
        this.db.pragma('synchronous = FULL')
        this.migrate()
      }
    } catch (error) {
      this.db.close()
      throw error
    }
    try {
      this.statements = this.prepare()
    } catch (error) {
      this.db.close()
      throw error
    }
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare(
        `INSERT INTO messages (id, peer, sender, recipient, out, text, sent_at, received_at, state)
         VALUES (@id, @peer, @sender, @recipient, @out, @text, @sent_at, @received_at, @state)
         ON CONFLICT (sender, id) DO NOTHING`,
      ),
      insertFts: db.prepare('INSERT INTO messages_fts (rowid, text, peer) VALUES (?, ?, ?)'),
      conversation: db.prepare(
        `INSERT INTO conversations (peer, unread, last_seq) VALUES (?, ?, ?)
         ON CONFLICT (peer) DO UPDATE SET unread = unread + excluded.unread,
           last_seq = CASE WHEN (SELECT received_at FROM messages WHERE seq = excluded.last_seq) >= (SELECT received_at FROM messages WHERE seq = last_seq) THEN excluded.last_seq ELSE last_seq END`,
      ),
      byKey: db.prepare('SELECT * FROM messages WHERE sender = ? AND id = ?'),
      byPeerId: db.prepare('SELECT received_at, seq FROM messages WHERE peer = ? AND id = ? ORDER BY seq LIMIT 1'),
      own: db.prepare('SELECT seq, state FROM messages WHERE out = 1 AND id = ?'),
      setState: db.prepare('UPDATE messages SET state = ? WHERE seq = ?'),
      pendingOwn: db.prepare(
        'SELECT id, recipient AS "to" FROM messages WHERE out = 1 AND state = \'pending\' ORDER BY seq',
      ),
      latest: db.prepare('SELECT * FROM messages WHERE peer = ? ORDER BY received_at DESC, seq DESC LIMIT ?'),
      before: db.prepare(
        'SELECT * FROM messages WHERE peer = ? AND (received_at, seq) < (?, ?) ORDER BY received_at DESC, seq DESC LIMIT ?',
      ),
      conversations: db.prepare(
        'SELECT c.peer AS c_peer, c.unread AS c_unread, m.* FROM conversations c LEFT JOIN messages m ON m.seq = c.last_seq ORDER BY m.received_at DESC, m.seq DESC',
      ),
      markRead: db.prepare('UPDATE conversations SET unread = 0 WHERE peer = ?'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      // The newest matches, by rowid alone: FTS5 walks its index lists and stops at the limit. (Its bm25() first counts
      // every message holding each term, 60 ms for a common word in a million messages; ranking is done in rankByBm25.)
      candidates: db
        .prepare(
          `SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ${RANKED_MATCHES}`,
        )
        .pluck(),
      /** How many messages hold a term, counted up to DF_CAP: enough to tell a rare word from a common one. */
      documentFrequency: db
        .prepare(`SELECT count(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? LIMIT ${DF_CAP})`)
        .pluck(),
      bySeqs: db.prepare('SELECT * FROM messages WHERE seq IN (SELECT value FROM json_each(?))'),
      total: db.prepare('SELECT max(seq) FROM messages').pluck(),
      lastOf: db.prepare(
        `INSERT INTO conversations (peer, unread, last_seq) VALUES (@peer, 0, (SELECT seq FROM messages WHERE peer = @peer ORDER BY received_at DESC, seq DESC LIMIT 1))
         ON CONFLICT (peer) DO UPDATE SET last_seq = excluded.last_seq`,
      ),
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${this.file} has history schema version ${version}; this udsu knows up to ${SCHEMA_VERSION}: update udsu`,
      )
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        MIGRATIONS[v](this.db)
        this.db.pragma(`user_version = ${v + 1}`)
      })()
    }
  }

  owner(): string | undefined {
    return (this.statements.getMeta.get('owner') as { value: string } | undefined)?.value
  }

  setOwner(name: string): void {
    const current = this.owner()
    if (current !== undefined && current !== name)
      throw new Error(`${this.file} is the history of "${current}", not "${name}"`)
    if (current === undefined) this.statements.setMeta.run('owner', name)
  }

  append(message: StoredMessage): boolean {
    return this.db.transaction(() => this.insert(message, !message.out))()
  }

  /** Inserts one message and indexes it; `unread` counts it for its conversation, unless `conversation` is false (the
   *  caller updates conversations once for a batch). Runs inside a transaction. */
  private insert(message: StoredMessage, unread: boolean, conversation = true): boolean {
    const result = this.statements.insert.run({
      id: message.id,
      peer: message.peer,
      sender: message.from,
      recipient: message.to,
      out: message.out ? 1 : 0,
      text: message.text,
      sent_at: message.ts,
      received_at: message.storedAt,
      state: message.out ? (message.state ?? 'pending') : null,
    })
    if (result.changes === 0) return false
    const seq = Number(result.lastInsertRowid)
    this.statements.insertFts.run(seq, ftsText(message.text), ftsText(message.peer))
    if (conversation) this.statements.conversation.run(message.peer, unread ? 1 : 0, seq)
    return true
  }

  has(sender: string, id: string): boolean {
    return this.statements.byKey.get(sender, id) !== undefined
  }

  /** The stored message with this sender and id. */
  get(sender: string, id: string): StoredMessage | undefined {
    const row = this.statements.byKey.get(sender, id) as Row | undefined
    return row && toMessage(row)
  }

  setState(id: string, state: MessageState): void {
    const row = this.statements.own.get(id) as { seq: number; state: MessageState | null } | undefined
    if (!row) return
    if (row.state && STATE_ORDER[row.state] > STATE_ORDER[state]) return
    this.statements.setState.run(state, row.seq)
  }

  pendingOwn(): Array<{ id: string; to: string }> {
    return this.statements.pendingOwn.all() as Array<{ id: string; to: string }>
  }

  page(peer: string, options: { limit?: number; before?: string } = {}): StoredMessage[] {
    const limit = clampLimit(options.limit)
    let rows: Row[]
    if (options.before === undefined) rows = this.statements.latest.all(peer, limit) as Row[]
    else {
      const anchor = this.statements.byPeerId.get(peer, options.before) as
        { received_at: number; seq: number } | undefined
      if (!anchor) throw new Error(`no message "${options.before}" in the conversation with ${peer}`)
      rows = this.statements.before.all(peer, anchor.received_at, anchor.seq, limit) as Row[]
    }
    return rows.reverse().map(toMessage)
  }

  search(query: string, options: { peer?: string; limit?: number } = {}): SearchHit[] {
    const exact = ftsQuery(query, { prefixes: false })
    if (!exact) return []
    const limit = clampLimit(options.limit)
    // The words in the text only (a name is not a word of every message); the peer's name as a phrase in its column,
    // and checked exactly after (the index splits "bob.s" into two words).
    const match = (words: string) =>
      options.peer === undefined ? `text : (${words})` : `text : (${words}) AND peer : ${ftsPhrase(options.peer)}`
    let seqs = this.statements.candidates.all(match(exact)) as number[]
    // Words as prefixes only when the words alone are not enough: a prefix merges the lists of every longer word,
    // which for a common one costs tens of ms over a million messages.
    const prefixed = ftsQuery(query) as string
    if (prefixed !== exact && seqs.length < RANKED_MATCHES)
      seqs = this.statements.candidates.all(match(prefixed)) as number[]
    if (!seqs.length) return []
    let rows = this.statements.bySeqs.all(JSON.stringify(seqs)) as Row[]
    if (options.peer !== undefined) rows = rows.filter((row) => row.peer === options.peer)
    rows.sort((a, b) => b.seq - a.seq)
    const terms = queryTerms(query)
    const total = (this.statements.total.get() as number | null) ?? 0
    const idf = terms.map(({ token }) => {
      // Counted for the word itself, also for a prefix: the longer words only add to its weight's cost.
      const df = this.statements.documentFrequency.get(`text : ${ftsPhrase(token)}`) as number
      return Math.log(1 + (total - df + 0.5) / (df + 0.5))
    })
    return rankByBm25(
      rows.map((row) => row.text),
      terms,
      idf,
    )
      .slice(0, limit)
      .map((i) => ({ message: toMessage(rows[i]), matches: matchRanges(rows[i].text, query) }))
  }

  conversations(): ConversationSummary[] {
    const rows = this.statements.conversations.all() as Array<Row & { c_peer: string; c_unread: number }>
    return rows.map((row) => ({
      peer: row.c_peer,
      unread: row.c_unread,
      ...(row.seq === null ? {} : { last: toMessage(row) }),
    }))
  }

  markRead(peer: string): void {
    this.statements.markRead.run(peer)
  }

  each(filter: ExportFilter, batch: (messages: StoredMessage[]) => void, batchSize = 1000): void {
    const { where, params } = filterSql(filter)
    const statement = this.db.prepare(
      `SELECT * FROM messages WHERE ${where} AND (received_at, seq) > (@after_at, @after_seq) ORDER BY received_at, seq LIMIT ${batchSize}`,
    )
    let after = { at: -Infinity, seq: -1 }
    for (;;) {
      const rows = statement.all({
        ...params,
        after_at: after.at === -Infinity ? Number.MIN_SAFE_INTEGER : after.at,
        after_seq: after.seq,
      }) as Row[]
      if (!rows.length) return
      batch(rows.map(toMessage))
      const last = rows[rows.length - 1]
      after = { at: last.received_at, seq: last.seq }
    }
  }

  count(filter: ExportFilter = {}): number {
    const { where, params } = filterSql(filter)
    return (this.db.prepare(`SELECT count(*) AS n FROM messages WHERE ${where}`).get(params) as { n: number }).n
  }

  merge(
    messages: Iterable<{ at: string; message: StoredMessage }>,
    owner: string,
    onProgress?: (done: number) => void,
  ): MergeReport {
    const report: MergeReport = { added: 0, skipped: 0, refused: [] }
    this.db.transaction(() => {
      this.setOwner(owner)
      let done = 0
      const touched = new Set<string>()
      for (const { at, message } of messages) {
        const existing = this.get(message.from, message.id)
        if (!existing) {
          this.insert(message, false, false)
          touched.add(message.peer)
          report.added++
        } else if (existing.text === message.text && existing.peer === message.peer) report.skipped++
        else
          report.refused.push({
            at,
            reason: `a message from ${message.from} with id "${message.id}" is already stored with a different text or conversation`,
          })
        if (onProgress && ++done % 1000 === 0) onProgress(done)
      }
      for (const peer of touched) this.statements.lastOf.run({ peer })
    })()
    return report
  }

  /** Runs `work` in one transaction: it all happens, or (when it throws) none of it. */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)()
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`limit must be a whole number from 1 to ${MAX_PAGE}, not ${limit}`)
  return Math.min(limit, MAX_PAGE)
}

function filterSql(filter: ExportFilter): { where: string; params: Record<string, string | number> } {
  const parts = ['1']
  const params: Record<string, string | number> = {}
  if (filter.peer !== undefined) {
    parts.push('peer = @peer')
    params.peer = filter.peer
  }
  if (filter.since !== undefined) {
    parts.push('received_at >= @since')
    params.since = filter.since
  }
  if (filter.until !== undefined) {
    parts.push('received_at <= @until')
    params.until = filter.until
  }
  return { where: parts.join(' AND '), params }
}

/**
 * Creates the database file 0600 before SQLite opens it, so no message is ever in a file others may read: SQLite gives
 * the -wal and -shm files it creates the database's mode. A file an earlier version left looser (with a -wal or -shm
 * left by a crash) is tightened first.
 */
function createPrivately(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', 0o600))
  for (const companion of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((fs.statSync(companion).mode & 0o077) !== 0) fs.chmodSync(companion, 0o600)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
}
