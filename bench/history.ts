// History at scale, each figure next to a baseline measured in the same run with plain better-sqlite3 (no plugin, no FTS):
// durable inserts, export and import of 100,000 messages, then opening, paging and searching 1,000,000.
// Run: node dist/bench/history.js [messages] (npm run bench runs it with 1,000,000)
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import type { StoredMessage } from '../core/services'
import { exportHistory } from '../plugins/history/export'
import { importFile } from '../plugins/history/import'
import { HISTORY_FILE, SqliteHistoryStore } from '../plugins/history/store'

const TOTAL = Number(process.argv[2] ?? 1_000_000)
const TRANSFER = 100_000
const DURABLE_INSERTS = 1000
const PEERS = Array.from({ length: 20 }, (_, i) => `peer${i}`)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-bench-history-'))

/** Deterministic words: Latin, Cyrillic, CJK and emoji, drawn with a Zipf-like skew as in real chats. */
let seed = 42
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ra', 'to', 'su', 'vi', 'pe', 'do', 'при', 'вет', 'ло', 'да', 'ма', 'кот']
const VOCABULARY = Array.from({ length: 5000 }, (_, i) => {
  if (i % 50 === 7) return ['東京', '你好', '世界', '電車', '天気'][i % 5]
  if (i % 97 === 3) return ['🎉', '👍', '😂', '❤️'][i % 4]
  let word = ''
  for (let n = 2 + (i % 3); n > 0; n--) word += SYLLABLES[Math.floor(random() * SYLLABLES.length)]
  return word
})
const word = () => VOCABULARY[Math.floor(VOCABULARY.length * random() ** 3)]
const sentence = () => Array.from({ length: 3 + Math.floor(random() * 12) }, word).join(' ')

function makeMessage(i: number, start = Date.UTC(2024, 0, 1)): StoredMessage {
  const peer = PEERS[i % PEERS.length]
  const out = i % 3 === 0
  const at = start + i * 1000
  const m: StoredMessage = {
    id: `b${i.toString(16)}`,
    from: out ? 'alice' : peer,
    to: out ? peer : 'alice',
    text: sentence(),
    ts: at,
    peer,
    out,
    storedAt: at,
  }
  if (out) m.state = 'delivered'
  return m
}

function plainDb(file: string): Database.Database {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(
    'CREATE TABLE IF NOT EXISTS m (seq INTEGER PRIMARY KEY, id TEXT, peer TEXT, sender TEXT, recipient TEXT, out INTEGER, text TEXT, sent_at INTEGER, received_at INTEGER, state TEXT)',
  )
  db.exec('CREATE INDEX IF NOT EXISTS m_peer ON m (peer, received_at, seq)')
  return db
}

const plainInsert = (db: Database.Database) => {
  const statement = db.prepare(
    'INSERT INTO m (id, peer, sender, recipient, out, text, sent_at, received_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  )
  return (m: StoredMessage) =>
    statement.run(m.id, m.peer, m.from, m.to, m.out ? 1 : 0, m.text, m.ts, m.storedAt, m.state ?? null)
}

function time<T>(action: () => T): [T, number] {
  const start = performance.now()
  const result = action()
  return [result, performance.now() - start]
}

async function timeAsync<T>(action: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now()
  const result = await action()
  return [result, performance.now() - start]
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const rows: string[][] = [['measure', 'history', 'baseline', 'ratio', 'target']]
function row(measure: string, ours: number, baseline: number, unit: string, target = ''): void {
  const digits = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
  rows.push([
    measure,
    `${digits(ours)} ${unit}`,
    `${digits(baseline)} ${unit}`,
    `${(ours / baseline).toFixed(2)}×`,
    target,
  ])
}

async function main(): Promise<void> {
  // ── durable inserts, one commit (fsync) per message, as deliver does ──
  const store = new SqliteHistoryStore(path.join(dir, 'durable.sqlite'))
  store.setOwner('alice')
  const [, ourInserts] = time(() => {
    for (let i = 0; i < DURABLE_INSERTS; i++) store.append(makeMessage(i))
  })
  store.close()
  const plain = plainDb(path.join(dir, 'plain-durable.sqlite'))
  const insert = plainInsert(plain)
  const oneTransaction = plain.transaction((m: StoredMessage) => insert(m))
  const [, plainInserts] = time(() => {
    for (let i = 0; i < DURABLE_INSERTS; i++) oneTransaction(makeMessage(i))
  })
  plain.close()
  row(
    'durable insert, a commit each',
    (DURABLE_INSERTS / ourInserts) * 1000,
    (DURABLE_INSERTS / plainInserts) * 1000,
    'msg/s',
  )

  // ── export and import of 100,000 messages ──
  const source = new SqliteHistoryStore(path.join(dir, 'transfer.sqlite'))
  const transferMessages = Array.from({ length: TRANSFER }, (_, i) => ({ at: '', message: makeMessage(i) }))
  const [, ourBulk] = time(() => source.merge(transferMessages, 'alice'))
  const bulkPlain = plainDb(path.join(dir, 'plain-transfer.sqlite'))
  const bulkInsert = plainInsert(bulkPlain)
  const [, plainBulk] = time(() =>
    bulkPlain.transaction(() => transferMessages.forEach(({ message }) => bulkInsert(message)))(),
  )
  row('bulk insert 100k, one transaction', (TRANSFER / ourBulk) * 1000, (TRANSFER / plainBulk) * 1000, 'msg/s')

  const exported = path.join(dir, 'export.json')
  const [, ourExport] = await timeAsync(() => exportHistory(source, { format: 'json', out: exported }))
  const [, plainExport] = time(() => {
    const all = bulkPlain.prepare('SELECT * FROM m ORDER BY received_at, seq').all()
    fs.writeFileSync(path.join(dir, 'plain-export.json'), JSON.stringify(all))
  })
  row('export 100k to JSON', ourExport, plainExport, 'ms')
  source.close()

  const target = new SqliteHistoryStore(path.join(dir, 'import.sqlite'))
  const [, ourImport] = await timeAsync(() => importFile(target, exported, { maxBytes: 1024 ** 3 }))
  target.close()
  const importPlain = plainDb(path.join(dir, 'plain-import.sqlite'))
  const importInsert = plainInsert(importPlain)
  const [, plainImport] = time(() => {
    const document = JSON.parse(fs.readFileSync(path.join(dir, 'plain-export.json'), 'utf8')) as Array<
      Record<string, unknown>
    >
    importPlain.transaction(() => {
      for (const r of document)
        importInsert({
          id: String(r.id),
          peer: String(r.peer),
          from: String(r.sender),
          to: String(r.recipient),
          out: r.out === 1,
          text: String(r.text),
          ts: Number(r.sent_at),
          storedAt: Number(r.received_at),
        })
    })()
  })
  importPlain.close()
  bulkPlain.close()
  row('import 100k from JSON', ourImport, plainImport, 'ms')

  // ── 1,000,000 messages: open and last page, scroll-back, search ──
  const bigFile = path.join(dir, HISTORY_FILE)
  const plainBig = plainDb(path.join(dir, 'plain-big.sqlite'))
  const bigInsert = plainInsert(plainBig)
  {
    const big = new SqliteHistoryStore(bigFile)
    for (let from = 0; from < TOTAL; from += TRANSFER) {
      const batch = Array.from({ length: Math.min(TRANSFER, TOTAL - from) }, (_, i) => ({
        at: '',
        message: makeMessage(from + i),
      }))
      big.merge(batch, 'alice')
      plainBig.transaction(() => batch.forEach(({ message }) => bigInsert(message)))()
    }
    big.close()
  }
  plainBig.close()
  const busiest = PEERS[0]

  const [, ourOpen] = time(() => {
    const s = new SqliteHistoryStore(bigFile)
    s.conversations()
    s.page(busiest, { limit: 50 })
    s.close()
  })
  const [, plainOpen] = time(() => {
    const db = new Database(path.join(dir, 'plain-big.sqlite'))
    db.prepare('SELECT * FROM m WHERE peer = ? ORDER BY received_at DESC, seq DESC LIMIT 50').all(busiest)
    db.close()
  })
  row(`open + conversations + last page (${TOTAL.toLocaleString('en')})`, ourOpen, plainOpen, 'ms', '< 200 ms')

  const big = new SqliteHistoryStore(bigFile)
  const plainRead = new Database(path.join(dir, 'plain-big.sqlite'), { readonly: true })
  const scrollOurs: number[] = []
  const scrollPlain: number[] = []
  let before = big.page(busiest, { limit: 50 })[0].id
  let plainBefore = { at: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER }
  const plainPage = plainRead.prepare(
    'SELECT * FROM m WHERE peer = ? AND (received_at, seq) < (?, ?) ORDER BY received_at DESC, seq DESC LIMIT 50',
  )
  for (let i = 0; i < 200; i++) {
    const [page, ms] = time(() => big.page(busiest, { limit: 50, before }))
    scrollOurs.push(ms)
    if (page.length < 50) break // the start of the conversation
    before = page[0].id
    const [plainRows, plainMs] = time(
      () => plainPage.all(busiest, plainBefore.at, plainBefore.seq) as Array<{ received_at: number; seq: number }>,
    )
    scrollPlain.push(plainMs)
    const last = plainRows[plainRows.length - 1]
    plainBefore = { at: last.received_at, seq: last.seq }
  }
  row('scroll-back page of 50, p95', percentile(scrollOurs, 95), percentile(scrollPlain, 95), 'ms', '< 20 ms')

  // Search: ours ranks, joins and finds the match ranges; the baseline is a LIKE scan, what a store without FTS does.
  const queries = [
    VOCABULARY[0],
    VOCABULARY[400],
    VOCABULARY[2000],
    VOCABULARY[4000],
    '東京',
    '🎉',
    `${VOCABULARY[10]} ${VOCABULARY[20]}`,
    VOCABULARY[5].slice(0, 4),
  ]
  const searchOurs: number[] = []
  const cold: number[] = []
  for (let round = 0; round < 6; round++)
    for (const q of queries) (round === 0 ? cold : searchOurs).push(time(() => big.search(q, { limit: 20 }))[1])
  const perPeer: number[] = []
  for (const q of queries) perPeer.push(time(() => big.search(q, { peer: busiest, limit: 20 }))[1])
  const like = plainRead.prepare("SELECT * FROM m WHERE text LIKE ? ESCAPE '\\' LIMIT 20")
  const searchPlain: number[] = []
  for (const q of queries.slice(0, 4)) searchPlain.push(time(() => like.all(`%${q.split(' ')[0]}%`))[1])
  row(
    `search, p50 (${TOTAL.toLocaleString('en')})`,
    percentile(searchOurs, 50),
    percentile(searchPlain, 50),
    'ms',
    '< 50 ms',
  )
  row(
    `search, p95 (${TOTAL.toLocaleString('en')})`,
    percentile(searchOurs, 95),
    percentile(searchPlain, 95),
    'ms',
    '< 50 ms',
  )
  row('search, first round after open, max', Math.max(...cold), percentile(searchPlain, 95), 'ms')
  row('search in one conversation, p95', percentile(perPeer, 95), percentile(searchPlain, 95), 'ms', '< 50 ms')
  big.close()
  plainRead.close()

  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  for (const r of rows) console.log('  ' + r.map((cell, c) => cell.padEnd(widths[c])).join('  '))
  console.log(
    `\n  baselines: plain better-sqlite3 with the same pragmas (WAL, synchronous=FULL), no FTS; search's is a LIKE scan`,
  )
}

main()
  .then(() => fs.rmSync(dir, { recursive: true, force: true }))
  .catch((error: Error) => {
    fs.rmSync(dir, { recursive: true, force: true })
    console.error(error)
    process.exit(1)
  })
