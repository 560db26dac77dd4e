// `udsu history export|import …`: the command-line side of history. cli/index.ts hands `udsu history` over to this.
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as readline from 'node:readline'
import { parseArgs } from 'node:util'
import { SingleBar } from 'cli-progress'
import { defaultProfileDir, NAME_PATTERN } from '../../core'
import { EXPORT_FORMATS, exportHistory, type ExportFormat } from './export'
import { importFile, ImportError } from './import'
import { HISTORY_FILE, SqliteHistoryStore } from './store'

export const HISTORY_HELP = `Usage:
  udsu history export [--profile DIR | --name NAME] [--peer NAME] [--since DATE] [--until DATE]
                      --format json|txt|html [--out FILE] [--encrypt]
  udsu history import FILE [--profile DIR | --name NAME] [--peer NAME]

  --profile DIR   the profile (default ~/.local/share/udsu/NAME with --name)
  --peer NAME     export: one conversation; import: the contact a Telegram chat's partner becomes
  --since DATE    export messages received on or after DATE (2026-11-29 or 2026-11-29T10:00:00Z)
  --until DATE    … and on or before DATE (a day alone means its end)
  --format        json (udsu's versioned format, docs/history-export.schema.json), txt or html (for people)
  --out FILE      write to FILE (atomically) instead of stdout
  --encrypt       seal the export with a passphrase (scrypt + AES-256-GCM); import asks for it
                  The passphrase comes from UDSU_PASSPHRASE, or is asked on the terminal.
  Import reads a udsu JSON export (sealed or not) or a Telegram Desktop result.json of a personal chat; it merges by
  message id in one transaction and works while the client runs.
`

/** Largest file import reads, as the plugin's default (maxImportMiB). */
const MAX_IMPORT_BYTES = 256 * 1024 * 1024

/** A problem with the command line: exit code 2 and a pointer to the help. */
export class HistoryUsageError extends Error {}

export async function runHistoryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      profile: { type: 'string' },
      name: { type: 'string' },
      peer: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      encrypt: { type: 'boolean' },
    },
  })
  const [action, ...rest] = positionals
  if (values.help || !action) return (void process.stdout.write(HISTORY_HELP), 0)
  if (values.peer !== undefined && !NAME_PATTERN.test(values.peer))
    throw new HistoryUsageError(`--peer "${values.peer}" is not a user name`)
  const profile = profileDir(values.profile, values.name)
  const file = path.join(profile, HISTORY_FILE)

  if (action === 'export') {
    if (rest.length) throw new HistoryUsageError(`export takes no file argument; use --out ${rest[0]}`)
    const format = values.format
    if (!format || !(EXPORT_FORMATS as readonly string[]).includes(format))
      throw new HistoryUsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`)
    const since = values.since === undefined ? undefined : parseDate(values.since, '--since', 'start')
    const until = values.until === undefined ? undefined : parseDate(values.until, '--until', 'end')
    if (!fs.existsSync(file)) throw new Error(`no history in ${profile} (${HISTORY_FILE} is missing)`)
    const passphrase = values.encrypt ? await askPassphrase(true) : undefined
    const store = openStore(file)
    const bar = progressBar('export')
    try {
      const count = await exportHistory(store, {
        peer: values.peer,
        since,
        until,
        format: format as ExportFormat,
        out: values.out,
        passphrase,
        onProgress: bar && ((done, total) => (bar.setTotal(total), bar.update(done))),
      })
      bar?.stop()
      if (values.out) process.stderr.write(`exported ${count} message(s) to ${values.out}\n`)
    } finally {
      bar?.stop()
      store.close()
    }
    return 0
  }

  if (action === 'import') {
    if (rest.length !== 1) throw new HistoryUsageError('import needs exactly one FILE')
    if (values.format || values.out || values.since || values.until || values.encrypt)
      throw new HistoryUsageError('import takes only FILE, --profile or --name, and --peer')
    fs.mkdirSync(profile, { recursive: true, mode: 0o700 })
    const store = openStore(file)
    const bar = progressBar('import')
    try {
      const report = await importFile(store, rest[0], {
        peer: values.peer,
        maxBytes: MAX_IMPORT_BYTES,
        passphrase: () => askPassphrase(false),
        onProgress: bar && ((done, total) => (bar.setTotal(total), bar.update(done))),
      })
      bar?.stop()
      process.stdout.write(
        `imported ${rest[0]} (${report.kind === 'telegram' ? 'Telegram chat' : 'udsu export'}): ${report.added} added, ${report.skipped} already there, ${report.refused.length} refused\n`,
      )
      for (const { at, reason } of report.refused) process.stdout.write(`  refused ${at}: ${reason}\n`)
      return 0
    } catch (error) {
      if (error instanceof ImportError) throw error
      if ((error as { code?: string }).code === 'SQLITE_BUSY')
        throw new Error(
          `the history in ${profile} stayed locked by another process for 5 s (a client writing a burst?); nothing was imported, try again`,
        )
      throw error
    } finally {
      bar?.stop()
      store.close()
    }
  }
  throw new HistoryUsageError(`unknown history command "${action}": export or import`)
}

function profileDir(profile: string | undefined, name: string | undefined): string {
  if (profile !== undefined && name !== undefined) throw new HistoryUsageError('give --profile or --name, not both')
  if (profile !== undefined) return path.resolve(profile)
  if (name === undefined) throw new HistoryUsageError('say whose history: --profile DIR or --name NAME')
  if (!NAME_PATTERN.test(name)) throw new HistoryUsageError(`--name "${name}" is not a user name`)
  return defaultProfileDir(name)
}

function openStore(file: string): SqliteHistoryStore {
  try {
    return new SqliteHistoryStore(file)
  } catch (error) {
    throw new Error(`cannot open ${file}: ${(error as Error).message}`)
  }
}

/** A day (`2026-11-29`, its start or end in UTC) or a full ISO time. */
export function parseDate(text: string, flag: string, edge: 'start' | 'end'): number {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(text)
  const ms = Date.parse(day ? `${text}T${edge === 'start' ? '00:00:00.000' : '23:59:59.999'}Z` : text)
  const valid = Number.isFinite(ms) && (!day || new Date(ms).toISOString().slice(0, 10) === text)
  if (!valid || !/^\d{4}-\d{2}-\d{2}/.test(text))
    throw new HistoryUsageError(`${flag} "${text}" is not a date: use 2026-11-29 or 2026-11-29T10:00:00Z`)
  return ms
}

/** A progress bar on stderr when it is a terminal; nothing when piped or redirected. */
function progressBar(what: string): SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${what} [{bar}] {percentage}% {value}/{total} messages`,
    hideCursor: true,
    clearOnComplete: true,
  })
  bar.start(1, 0)
  return bar
}

async function askPassphrase(twice: boolean): Promise<string> {
  const fromEnv = process.env.UDSU_PASSPHRASE
  if (fromEnv !== undefined) {
    if (!fromEnv) throw new Error('UDSU_PASSPHRASE is empty')
    return fromEnv
  }
  if (!process.stdin.isTTY || !process.stderr.isTTY)
    throw new Error('a passphrase is needed: set UDSU_PASSPHRASE, or run on a terminal to be asked')
  const first = await hiddenQuestion('passphrase: ')
  if (!first) throw new Error('the passphrase is empty')
  if (twice && (await hiddenQuestion('again: ')) !== first) throw new Error('the two passphrases differ')
  return first
}

function hiddenQuestion(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true })
    // Echo nothing of what is typed: readline writes through _writeToOutput.
    ;(rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(prompt)) process.stderr.write(prompt)
    }
    rl.question(prompt, (answer) => {
      rl.close()
      process.stderr.write('\n')
      resolve(answer)
    })
  })
}
