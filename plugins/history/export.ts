// Export: history as our versioned JSON (docs/history-export.schema.json), or as text and HTML for people; optionally sealed.
import { writeFileAtomic, type StoredMessage } from '../../core'
import { seal } from './crypto'
import type { ExportFilter, HistoryStore } from './store'

export const EXPORT_FORMAT = 'udsu-history'
export const EXPORT_VERSION = 1
export const EXPORT_FORMATS = ['json', 'txt', 'html'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

/** One message as the JSON export writes it (see the JSON Schema in docs/). */
export interface ExportedMessage {
  id: string
  peer: string
  from: string
  to: string
  out: boolean
  state?: StoredMessage['state']
  text: string
  /** ISO 8601, UTC, with milliseconds: the sender's clock. */
  sent: string
  /** ISO 8601, UTC, with milliseconds: when the owner's client stored it. */
  received: string
}

export interface ExportFile {
  format: typeof EXPORT_FORMAT
  version: typeof EXPORT_VERSION
  owner: string
  exported: string
  messages: ExportedMessage[]
}

export interface ExportOptions extends ExportFilter {
  format: ExportFormat
  /** The file to write (atomically); stdout when absent. */
  out?: string
  /** Seals the output (scrypt + AES-256-GCM) with this passphrase. */
  passphrase?: string
  /** Called as messages are written, with the count so far and the total. */
  onProgress?: (done: number, total: number) => void
}

export function formatFromFile(file: string): ExportFormat {
  const ext = /\.([a-z]+)$/i.exec(file)?.[1]?.toLowerCase()
  if (ext === 'htm') return 'html'
  if (ext && (EXPORT_FORMATS as readonly string[]).includes(ext)) return ext as ExportFormat
  throw new Error(`cannot tell the format from "${file}": name it .json, .txt or .html`)
}

export function toExported(message: StoredMessage): ExportedMessage {
  const exported: ExportedMessage = {
    id: message.id,
    peer: message.peer,
    from: message.from,
    to: message.to,
    out: message.out,
    text: message.text,
    sent: iso(message.ts),
    received: iso(message.storedAt),
  }
  if (message.out && message.state) exported.state = message.state
  return exported
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Writes the export and returns how many messages it holds. */
export async function exportHistory(store: HistoryStore, options: ExportOptions): Promise<number> {
  const { data, count } = renderExport(store, options)
  if (options.out) writeFileAtomic(options.out, data)
  else
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(data, (error) => (error ? reject(error) : resolve())),
    )
  return count
}

/** The export's bytes (sealed with a passphrase, else text) and how many messages it holds. */
export function renderExport(store: HistoryStore, options: ExportOptions): { data: string; count: number } {
  const filter: ExportFilter = { peer: options.peer, since: options.since, until: options.until }
  const owner = store.owner() ?? 'unknown'
  const total = store.count(filter)
  const chunks: string[] = []
  let done = 0
  const progress = (n: number) => {
    done += n
    options.onProgress?.(done, total)
  }
  if (options.format === 'json') writeJson(store, filter, owner, chunks, progress)
  else writeForPeople(store, filter, owner, options.format, chunks, progress)
  let data = chunks.join('')
  if (options.passphrase !== undefined) data = seal(Buffer.from(data, 'utf8'), options.passphrase)
  return { data, count: done }
}

function writeJson(
  store: HistoryStore,
  filter: ExportFilter,
  owner: string,
  chunks: string[],
  progress: (n: number) => void,
): void {
  // One message per line: a person can read and diff it, and an error names a line.
  chunks.push(
    `{"format":"${EXPORT_FORMAT}","version":${EXPORT_VERSION},"owner":${JSON.stringify(owner)},"exported":"${iso(Date.now())}","messages":[`,
  )
  let first = true
  store.each(filter, (batch) => {
    for (const message of batch) {
      chunks.push(`${first ? '' : ','}\n${JSON.stringify(toExported(message))}`)
      first = false
    }
    progress(batch.length)
  })
  chunks.push(`${first ? '' : '\n'}]}\n`)
}

const STATE_MARKS = { pending: '○', sent: '✓', delivered: '✓✓', failed: '✗' } as const

/** `2026-11-29 10:04` in UTC: one zone for every reader of the file, said in its header. */
const stamp = (ms: number) => iso(ms).slice(0, 16).replace('T', ' ')

function writeForPeople(
  store: HistoryStore,
  filter: ExportFilter,
  owner: string,
  format: 'txt' | 'html',
  chunks: string[],
  progress: (n: number) => void,
): void {
  const peers =
    filter.peer !== undefined
      ? [filter.peer]
      : store
          .conversations()
          .map((c) => c.peer)
          .sort((a, b) => a.localeCompare(b))
  const title = `udsu history of ${owner}`
  const note = `exported ${stamp(Date.now())} UTC; times are UTC`
  if (format === 'txt') chunks.push(`${title}\n${note}\n`)
  else {
    chunks.push(
      '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n' +
        // No script, no fetch: the file shows the same anywhere, and nothing in a message can make it run code.
        `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">\n` +
        `<title>${html(title)}</title>\n<style>${STYLE}</style></head><body>\n<h1>${html(title)}</h1>\n<p class="note">${html(note)}</p>\n`,
    )
  }
  for (const peer of peers) {
    if (store.count({ ...filter, peer }) === 0) continue
    chunks.push(format === 'txt' ? `\n── ${peer} ──\n` : `<section><h2>${html(peer)}</h2>\n`)
    store.each({ ...filter, peer }, (batch) => {
      for (const m of batch) {
        const mark = m.out && m.state ? ` ${STATE_MARKS[m.state]}` : ''
        if (format === 'txt')
          chunks.push(`${stamp(m.storedAt)} ${m.from}: ${m.text.replace(/\n/g, '\n      ')}${mark}\n`)
        else {
          chunks.push(
            `<div class="m${m.out ? ' out' : ''}"><time datetime="${iso(m.storedAt)}">${stamp(m.storedAt)}</time> ` +
              `<b>${html(m.from)}</b> <span class="t">${html(m.text)}</span>${mark ? `<span class="s">${mark}</span>` : ''}</div>\n`,
          )
        }
      }
      progress(batch.length)
    })
    if (format === 'html') chunks.push('</section>\n')
  }
  if (format === 'html') chunks.push('</body></html>\n')
}

const STYLE =
  'body{font:15px/1.4 system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em}h2{border-bottom:1px solid #ccc}' +
  '.note,time,.s{color:#777}.m{margin:.2em 0}.out b{color:#246}.t{white-space:pre-wrap}'

/** Every character that could end text and start markup is escaped. */
export function html(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  )
}
