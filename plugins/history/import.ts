// Import: reads our JSON export (checked against the JSON Schema with ajv) or a Telegram Desktop result.json, and merges
// it into history in one transaction. A bad file changes nothing and the error names the problem, its JSON path and line.
import * as fs from 'node:fs'
import Ajv, { type ErrorObject } from 'ajv'
import type { StoredMessage } from '../../core'
import exportSchema from '../../docs/history-export.schema.json'
import { isSealed, unseal } from './crypto'
import { EXPORT_FORMAT, EXPORT_VERSION, type ExportFile } from './export'
import type { HistoryStore, MergeReport } from './store'
import { isTelegramExport, mapTelegram } from './telegram'

export interface ImportOptions {
  /** The contact a Telegram chat's partner becomes. */
  peer?: string
  /** Largest file read, in bytes. */
  maxBytes: number
  /** Asked only when the file is sealed. */
  passphrase?: () => Promise<string>
  onProgress?: (done: number, total: number) => void
}

export interface ImportReport extends MergeReport {
  /** What the file was: our export or a Telegram chat. */
  kind: 'udsu' | 'telegram'
}

/** A file that cannot be imported; nothing was changed. */
export class ImportError extends Error {
  constructor(
    readonly file: string,
    problems: string[],
  ) {
    super(`${file} cannot be imported, nothing was changed:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'ImportError'
  }
}

/** Problems listed at most; past that the error says how many more. */
const MAX_PROBLEMS = 20

const ajv = new Ajv({ allErrors: true, unicodeRegExp: true })
const validateExport = ajv.compile<ExportFile>(exportSchema)

export async function importFile(store: HistoryStore, file: string, options: ImportOptions): Promise<ImportReport> {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch (error) {
    throw new ImportError(file, [`cannot read it: ${(error as Error).message}`])
  }
  if (size > options.maxBytes) {
    throw new ImportError(file, [
      `it is ${mib(size)} MiB, over the limit of ${mib(options.maxBytes)} MiB (the history plugin's maxImportMiB option)`,
    ])
  }
  return importBytes(store, file, fs.readFileSync(file), options)
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(bytes < 1024 * 1024 ? 2 : 0)

export async function importBytes(
  store: HistoryStore,
  file: string,
  bytes: Buffer,
  options: ImportOptions,
): Promise<ImportReport> {
  const { text, document } = parse(file, bytes)
  if (isSealed(document)) {
    if (!options.passphrase)
      throw new ImportError(file, ['it is sealed with a passphrase: give one (--UDSU_PASSPHRASE or the prompt)'])
    let plain: Buffer
    try {
      plain = unseal(document, await options.passphrase())
    } catch (error) {
      throw new ImportError(file, [(error as Error).message])
    }
    return importBytes(store, file, plain, { ...options, passphrase: undefined })
  }
  if (isTelegramExport(document)) {
    if (!options.peer)
      throw new ImportError(file, [
        'it is a Telegram chat: say which contact the chat partner is (--peer NAME, or open the conversation first)',
      ])
    const owner = store.owner()
    if (!owner)
      throw new ImportError(file, [
        'this profile has no owner yet: start the client once with this profile, then import',
      ])
    const mapped = mapTelegram(document, { owner, peer: options.peer })
    if ('problems' in mapped)
      throw new ImportError(
        file,
        mapped.problems.map((p) => withLine(text, p)),
      )
    return { kind: 'telegram', ...merge(store, file, mapped.messages, owner, options, mapped.refused) }
  }
  const checked = checkExport(file, text, document)
  return { kind: 'udsu', ...merge(store, file, checked.messages, checked.owner, options, []) }
}

/** Parses UTF-8 JSON; an error says where (line and column) and whether the file looks cut short. */
function parse(file: string, bytes: Buffer): { text: string; document: unknown } {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    throw new ImportError(file, ['it is not UTF-8 text (a binary or damaged file?)'])
  }
  if (!text.trim()) throw new ImportError(file, ['it is empty'])
  try {
    return { text, document: JSON.parse(text) }
  } catch (error) {
    const message = (error as Error).message
    const position = /position (\d+)/.exec(message)
    const at = position ? Number(position[1]) : text.length
    // V8 says "Unexpected end of JSON input", or names the very end ("Unterminated string … at position <length>").
    if (at >= text.trimEnd().length) {
      throw new ImportError(file, [
        `it ends in the middle of the JSON at ${lineColumn(text, text.length)}: cut short (truncated)?`,
      ])
    }
    throw new ImportError(file, [
      `it is not valid JSON at ${lineColumn(text, at)}: ${message.replace(/ in JSON at position \d+.*$/, '')}`,
    ])
  }
}

interface Checked {
  owner: string
  messages: Array<{ at: string; message: StoredMessage }>
}

/** Checks a parsed document against the schema and the rules a schema cannot state; every problem, with path and line. */
function checkExport(file: string, text: string, document: unknown): Checked {
  const record =
    typeof document === 'object' && document !== null && !Array.isArray(document)
      ? (document as Record<string, unknown>)
      : undefined
  if (!record || record.format !== EXPORT_FORMAT) {
    throw new ImportError(file, [
      `it is neither a udsu export ("format": "${EXPORT_FORMAT}") nor a Telegram Desktop chat export (result.json)`,
    ])
  }
  if (record.version !== EXPORT_VERSION) {
    const newer = typeof record.version === 'number' && record.version > EXPORT_VERSION
    throw new ImportError(file, [
      withLine(text, {
        path: ['version'],
        problem: `is ${JSON.stringify(record.version)}: ${newer ? 'written by a newer udsu; update udsu to read it' : `this udsu reads version ${EXPORT_VERSION}`}`,
      }),
    ])
  }
  if (!validateExport(document))
    throw new ImportError(file, limit((validateExport.errors ?? []).map((e) => withLine(text, fromAjv(e)))))

  const problems: Located[] = []
  const owner = document.owner
  const seen = new Map<string, { text: string; index: number }>()
  const messages: Checked['messages'] = []
  document.messages.forEach((m, i) => {
    const at = ['messages', String(i)]
    const ts = time(m.sent, [...at, 'sent'], problems)
    const storedAt = time(m.received, [...at, 'received'], problems)
    if (m.out !== (m.from === owner))
      problems.push({
        path: [...at, 'out'],
        problem: `is ${m.out}, but the message is ${m.from === owner ? '' : 'not '}from the owner ${owner}`,
      })
    const peer = m.out ? m.to : m.from
    if (m.peer !== peer)
      problems.push({
        path: [...at, 'peer'],
        problem: `is "${m.peer}", but the other side of this message is "${peer}"`,
      })
    if (!m.out && m.to !== owner)
      problems.push({
        path: [...at, 'to'],
        problem: `is "${m.to}": a received message is addressed to the owner ${owner}`,
      })
    if (m.state && !m.out)
      problems.push({
        path: [...at, 'state'],
        problem: "is set on a received message; only one's own messages have a delivery state",
      })
    if (hasLoneSurrogate(m.text))
      problems.push({ path: [...at, 'text'], problem: 'is not valid Unicode (a lone surrogate)' })
    const key = `${m.from}\u0000${m.id}`
    const earlier = seen.get(key)
    if (earlier && earlier.text !== m.text) {
      problems.push({
        path: [...at, 'id'],
        problem: `"${m.id}" from ${m.from} is also $.messages[${earlier.index}] with a different text`,
      })
    }
    if (!earlier) seen.set(key, { text: m.text, index: i })
    if (ts !== undefined && storedAt !== undefined) {
      const message: StoredMessage = {
        id: m.id,
        from: m.from,
        to: m.to,
        text: m.text,
        ts,
        peer: m.peer,
        out: m.out,
        storedAt,
      }
      if (m.state) message.state = m.state
      messages.push({ at: jsonPath(at), message })
    }
  })
  if (problems.length) throw new ImportError(file, limit(problems.map((p) => withLine(text, p))))
  return { owner, messages }
}

function merge(
  store: HistoryStore,
  file: string,
  messages: Array<{ at: string; message: StoredMessage }>,
  owner: string,
  options: ImportOptions,
  refusedBefore: MergeReport['refused'],
): MergeReport {
  const current = store.owner()
  if (current !== undefined && current !== owner)
    throw new ImportError(file, [`it is the history of "${owner}", and this profile is "${current}"'s`])
  const total = messages.length
  const report = store.merge(messages, owner, (done) => options.onProgress?.(done, total))
  options.onProgress?.(total, total)
  return { ...report, refused: [...refusedBefore, ...report.refused] }
}

/** A time the schema's pattern let through that must also exist as a date (no 30 February, no hour 25). */
function time(value: string, path: string[], problems: Located[]): number | undefined {
  const ms = Date.parse(value)
  const exact = Number.isFinite(ms) ? new Date(ms).toISOString() : ''
  // Date.parse rolls 30 February over to March: the round trip must give back the same calendar fields.
  if (!Number.isFinite(ms) || exact.slice(0, 19) !== value.slice(0, 19)) {
    problems.push({ path, problem: `"${value}" is not a real date and time` })
    return undefined
  }
  return ms
}

const hasLoneSurrogate = (text: string) =>
  /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)

/** A problem at a place in the document: the path as keys and indexes. */
export interface Located {
  path: string[]
  problem: string
}

function fromAjv(error: ErrorObject): Located {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  let problem = error.message ?? 'is invalid'
  if (error.keyword === 'additionalProperties')
    problem = `has an unknown key "${String(error.params.additionalProperty)}"`
  else if (error.keyword === 'required') problem = `lacks "${String(error.params.missingProperty)}"`
  else if (error.keyword === 'pattern' && /sent|received|exported/.test(path[path.length - 1] ?? ''))
    problem = 'must be a UTC time like 2026-11-29T10:04:00.000Z'
  else if (error.keyword === 'const') problem = `must be ${JSON.stringify(error.params.allowedValue)}`
  else problem = problem.replace(/^must/, 'must')
  return { path, problem }
}

function limit(problems: string[]): string[] {
  return problems.length > MAX_PROBLEMS
    ? [...problems.slice(0, MAX_PROBLEMS), `… and ${problems.length - MAX_PROBLEMS} more problems`]
    : problems
}

export function jsonPath(path: readonly string[]): string {
  return (
    '$' +
    path
      .map((k) =>
        /^\d+$/.test(k) ? `[${k}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`,
      )
      .join('')
  )
}

/** `$.messages[3].sent (line 5, column 12): problem`. */
export function withLine(text: string, { path, problem }: Located): string {
  const at = locate(text, path)
  return `${jsonPath(path)}${at === undefined ? '' : ` (${lineColumn(text, at)})`} ${problem}`
}

function lineColumn(text: string, offset: number): string {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return `line ${line}, column ${offset - lineStart + 1}`
}

/** The offset of the value at `path` in JSON `text` (already known to parse), or undefined if it is not there. */
export function locate(text: string, path: readonly string[]): number | undefined {
  let at = 0
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++
  }
  const skipString = () => {
    at++ // opening quote
    while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1
    at++
  }
  const readString = (): string => {
    const start = at
    skipString()
    return JSON.parse(text.slice(start, at)) as string
  }
  const skipValue = () => {
    space()
    if (text[at] === '"') return skipString()
    if (text[at] === '{' || text[at] === '[') {
      let depth = 0
      do {
        const c = text[at]
        if (c === '"') {
          skipString()
          continue
        }
        if (c === '{' || c === '[') depth++
        else if (c === '}' || c === ']') depth--
        at++
      } while (depth > 0 && at < text.length)
      return
    }
    while (at < text.length && !',}] \t\n\r'.includes(text[at])) at++
  }
  space()
  for (const key of path) {
    space()
    if (text[at] === '{') {
      at++
      let found = false
      for (;;) {
        space()
        if (text[at] !== '"') return undefined
        const name = readString()
        space()
        at++ // colon
        space()
        if (name === key) {
          found = true
          break
        }
        skipValue()
        space()
        if (text[at] !== ',') return undefined
        at++
      }
      if (!found) return undefined
    } else if (text[at] === '[') {
      at++
      const index = Number(key)
      for (let i = 0; i < index; i++) {
        skipValue()
        space()
        if (text[at] !== ',') return undefined
        at++
      }
      space()
    } else return undefined
  }
  space()
  return at
}
