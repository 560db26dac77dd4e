// Helpers for history's tests: stores in temporary profiles, messages, and a snapshot of everything a store holds.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { StoredMessage } from '../../../core/services'
import { HISTORY_FILE, SqliteHistoryStore } from '../store'

const temps: string[] = []

export function tempProfile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-history-'))
  temps.push(dir)
  return dir
}

export function cleanupProfiles(): void {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
}

/** A store in a new temporary profile, owned by `owner` unless undefined. */
export function openTempStore(owner: string | undefined = 'alice'): SqliteHistoryStore {
  const store = new SqliteHistoryStore(path.join(tempProfile(), HISTORY_FILE))
  if (owner !== undefined) store.setOwner(owner)
  return store
}

let counter = 0
/** A message between the owner `alice` and `peer`; `out` when alice wrote it. */
export function message(
  peer: string,
  out: boolean,
  text: string,
  at = 1_764_000_000_000 + counter * 1000,
): StoredMessage {
  counter++
  const m: StoredMessage = {
    id: `m${counter.toString(16).padStart(8, '0')}`,
    from: out ? 'alice' : peer,
    to: out ? peer : 'alice',
    text,
    ts: at - 50,
    peer,
    out,
    storedAt: at,
  }
  if (out) m.state = 'delivered'
  return m
}

/** Everything the store holds, in order: two equal snapshots mean the same history. */
export function snapshot(store: SqliteHistoryStore): {
  owner?: string
  messages: StoredMessage[]
  conversations: unknown
} {
  const messages: StoredMessage[] = []
  store.each({}, (batch) => messages.push(...batch))
  return { owner: store.owner(), messages, conversations: store.conversations() }
}
