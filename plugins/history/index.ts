// History: every conversation kept in SQLite in the profile. Received messages are stored before any frontend shows
// them (deliver, stage -100), one's own when accepted, with their delivery state; the `history` service reads them.
import * as path from 'node:path'
import {
  definePlugin,
  number,
  object,
  optional,
  validate,
  type CommandOutput,
  type CoreServices,
  type HistoryService,
  type SearchHit,
} from '../../core'
import { exportHistory, formatFromFile, renderExport } from './export'
import { importBytes, importFile } from './import'
import { HISTORY_FILE, SqliteHistoryStore, type HistoryStore } from './store'

const optionsSchema = object({
  /** Largest file `/import` and `udsu history import` read, in MiB: a file is parsed whole in memory. */
  maxImportMiB: optional(number({ min: 1, max: 4096, integer: true }), 256),
})
export type HistoryOptions = NonNullable<ReturnType<typeof optionsSchema>>

type Deps = Pick<CoreServices, 'hooks' | 'logger' | 'profile' | 'services' | 'commands' | 'me'>

/** Search results a command prints when the frontend cannot highlight. */
const SEARCH_LIMIT = 20

export default definePlugin<HistoryOptions, Deps>({
  name: 'history',
  provides: ['history'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, logger, profile, services, commands, me }, options): { store(): HistoryStore } {
    const log = logger.child('history')
    let store: SqliteHistoryStore | undefined
    let markOpened!: () => void
    let failOpen!: (error: Error) => void
    // Service calls made before init (a frontend loading early) wait for the store instead of failing.
    const opened = new Promise<void>((resolve, reject) => ((markOpened = resolve), (failOpen = reject)))
    opened.catch(() => undefined) // a failed open is reported by init; callers that wait get the same error
    const whenOpen = async (): Promise<SqliteHistoryStore> => {
      await opened
      if (!store) throw new Error('history is closed')
      return store
    }
    const currentStore = () => {
      if (!store) throw new Error('history is not open: it opens at init')
      return store
    }

    const service: HistoryService = {
      page: async (peer, options) => (await whenOpen()).page(peer, options),
      search: async (query, options) => (await whenOpen()).search(query, options),
      conversations: async () => (await whenOpen()).conversations(),
      markRead: async (peer) => (await whenOpen()).markRead(peer),
      append: async (message) => (await whenOpen()).append(message),
      count: async (peer) => (await whenOpen()).count(peer === undefined ? {} : { peer }),
      exportText: async ({ peer, format }) =>
        renderExport(await whenOpen(), { format, ...(peer === undefined ? {} : { peer }) }).data,
      importText: async (text, { peer, file = 'the file' } = {}) => {
        const report = await importBytes(await whenOpen(), file, Buffer.from(text, 'utf8'), {
          ...(peer === undefined ? {} : { peer }),
          maxBytes: options.maxImportMiB * 1024 * 1024,
        })
        return { added: report.added, skipped: report.skipped, refused: report.refused.length }
      },
    }
    services.provide('history', service, 'history')

    // Before the default stage, so that plugins and frontends that read history in their own init find it open.
    hooks.init.tapPromise({ name: 'history', stage: -500 }, async () => {
      try {
        profile.ensure()
        store = new SqliteHistoryStore(profile.path(HISTORY_FILE))
        store.setOwner(me.name)
        markOpened()
      } catch (error) {
        failOpen(error as Error)
        throw new Error(`cannot open the history in ${profile.path(HISTORY_FILE)}: ${(error as Error).message}`)
      }
    })

    // Stored (and fsync'ed) before the frontends' taps run: a message shown was stored, and one stored was shown before
    // (or is shown from history after a restart), so it stops here instead of being shown twice.
    hooks.deliver.tapPromise({ name: 'history', stage: -100 }, async (message) => {
      const stored = currentStore().append({ ...message, peer: message.from, out: false, storedAt: Date.now() })
      if (!stored)
        log.debug('a message already in history was delivered again; not shown twice', {
          from: message.from,
          id: message.id,
        })
      return stored ? undefined : true
    })

    hooks.accepted.tap('history', (message) => {
      currentStore().append({ ...message, peer: message.to, out: true, state: 'pending', storedAt: Date.now() })
    })

    // Own messages left `pending` by an earlier run: a delivery plugin with an outbox reports those it still holds as
    // `pending` by `ready`; the others died with that process before they left, and are marked failed so they do not
    // look queued for ever.
    let leftPending = new Map<string, string>()
    hooks.init.tapPromise({ name: 'history', stage: -499 }, async () => {
      leftPending = new Map(store?.pendingOwn().map(({ id, to }) => [id, to]))
    })
    hooks.messageState.tap('history', ({ id, state }) => {
      if (state === 'pending') leftPending.delete(id)
      store?.setState(id, state)
    })
    hooks.ready.tap({ name: 'history', stage: 100 }, () => {
      const lost = leftPending
      leftPending = new Map()
      for (const [id, to] of lost)
        hooks.messageState.call({
          id,
          to,
          state: 'failed',
          reason: 'it had not left when udsu last stopped; send it again',
        })
    })

    // After the delivery plugins' stop (default stage), which may still hand over messages; before the profile unlocks.
    hooks.stop.tapPromise({ name: 'history', stage: 150 }, async () => {
      store?.close()
      store = undefined
    })

    commands.register({
      name: 'search',
      usage: '/search WORDS',
      description: 'search every conversation for messages with all these words',
      async run(args, out) {
        if (!args.trim()) return out.error('usage: /search WORDS')
        const hits = await service.search(args, { limit: SEARCH_LIMIT })
        if (out.showHits) return out.showHits(args, hits)
        out.info(hits.length ? hits.map(plainHit).join('\n') : `no message contains ${args}`)
      },
    })
    commands.register({
      name: 'export',
      usage: '/export FILE',
      description: 'write the open conversation (or all) to FILE: .json, .txt or .html',
      async run(args, out) {
        const file = args.trim()
        if (!file) return out.error('usage: /export FILE (.json, .txt or .html)')
        const target = path.resolve(profile.dir, file)
        const written = await exportHistory(currentStore(), {
          peer: out.current,
          format: formatFromFile(target),
          out: target,
        })
        out.info(`exported ${written} message(s)${out.current ? ` with ${out.current}` : ''} to ${target}`)
      },
    })
    commands.register({
      name: 'import',
      usage: '/import FILE',
      description: 'merge an export (or a Telegram result.json into the open conversation) into history',
      async run(args, out) {
        const file = args.trim()
        if (!file) return out.error('usage: /import FILE')
        // A sealed file opens with UDSU_PASSPHRASE: a terminal frontend cannot ask for it without showing it.
        const passphrase = process.env.UDSU_PASSPHRASE
        const report = await importFile(currentStore(), path.resolve(profile.dir, file), {
          peer: out.current,
          maxBytes: options.maxImportMiB * 1024 * 1024,
          passphrase: passphrase ? async () => passphrase : undefined,
        })
        reportImport(report, out)
      },
    })

    return { store: currentStore }
  },
})

function plainHit({ message, matches }: SearchHit): string {
  let text = ''
  let at = 0
  for (const [start, end] of matches) {
    text += `${message.text.slice(at, start)}«${message.text.slice(start, end)}»`
    at = end
  }
  text += message.text.slice(at)
  return `${message.peer} · ${new Date(message.storedAt).toISOString().slice(0, 16).replace('T', ' ')} ${message.from}: ${text}`
}

function reportImport(report: Awaited<ReturnType<typeof importFile>>, out: CommandOutput): void {
  out.info(`imported: ${report.added} added, ${report.skipped} already there, ${report.refused.length} refused`)
  for (const { at, reason } of report.refused.slice(0, 10)) out.error(`refused ${at}: ${reason}`)
  if (report.refused.length > 10) out.error(`… and ${report.refused.length - 10} more refused`)
}
