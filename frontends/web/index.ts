// The web frontend: the chat in a browser page on 127.0.0.1, talking to this client over a WebSocket bridge.
// The gui frontend runs the same page in Electron through the same bridge (see frontends/gui).
import * as path from 'node:path'
import {
  Cancelled,
  DEFAULT_SERVER,
  defaultProfileDir,
  definePlugin,
  number,
  object,
  observeFrontendEvents,
  optional,
  Profile,
  validate,
  Veto,
  type CoreServices,
  type FrontendEvent,
  type HistoryService,
  type Identity,
  type MessageState,
  type Settings,
  type StoredMessage,
} from '../../core'
import {
  parseRequestEnvelope,
  type ContactView,
  type CoreEvent,
  type CoreRequest,
  type ExportFile,
  type HistoryPage,
  type MessageView,
  type Phase,
  type RequestOf,
  type RequestResults,
  type RequestType,
  type SearchResult,
  type StartProblems,
} from './bridge'
import { checkSettings } from './preflight'
import { WebServer, type BridgeConnection } from './server'

const optionsSchema = object({
  /** The port on 127.0.0.1; 0 (the default) takes any free one. */
  port: optional(number({ min: 0, max: 65535, integer: true }), 0),
})
export type WebOptions = NonNullable<ReturnType<typeof optionsSchema>>

export type WebDeps = Pick<CoreServices, 'hooks' | 'chat' | 'commands' | 'settings' | 'services' | 'logger'>

/** Messages of a conversation per history page. */
export const PAGE_SIZE = 50
/** Messages kept in memory per conversation when no history plugin keeps them. */
const MEMORY_PER_PEER = 5000
/** How often the contact list asks who is online, besides peer events. */
const REFRESH_MS = 5000
/** The start window remembers the last name and server here, in udsu's data folder. */
export const REMEMBERED_FILE = 'web.json'

export default definePlugin<WebOptions, WebDeps>({
  name: 'web',
  provides: ['frontend'],
  options: (raw) => validate(optionsSchema, raw),
  create(deps, options) {
    createWebFrontend(deps, options, {
      name: 'web',
      // The one line on stdout: where to point a browser. Logs go to stderr.
      launched: async (url) => void process.stdout.write(`udsu web frontend: open ${url}\n`),
    })
  },
})

export interface Launcher {
  /** The name taps are registered under. */
  name: string
  /** The server listens at `url` (page) and `socketUrl` (bridge): show it to the user. Awaited before the start window waits. */
  launched(url: string, server: WebServer): Promise<void>
}

export interface WebFrontend {
  server: WebServer
  /** Leaves: cancels the start window, or stops the client. */
  quit(): void
  /** Gives up for a reason the user must see: at the start window the start fails with it, later the client stops. */
  fail(reason: string): void
}

/** The frontend behind the bridge: the start window's flow, the chat's state and every request. */
export function createWebFrontend(
  { hooks, chat, commands, settings, services, logger }: WebDeps,
  options: WebOptions,
  launcher: Launcher,
): WebFrontend {
  const log = logger.child(launcher.name)
  let phase: Phase = 'start'
  let startProblems: StartProblems | undefined
  let prefill: Settings = { name: settings.name, server: settings.server }
  let me: Identity | undefined
  let server: { online: boolean; server: string; current?: string; reason?: string } | undefined
  /** The refusal of our registration seen while starting (a taken name): the start window shows it. */
  let refusal: string | undefined
  let acceptStart: ((settings: Settings) => void) | undefined
  let cancelStart: ((reason: Veto) => void) | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  const contacts = new Map<string, ContactView>()
  /** This session's messages, per peer, oldest first. */
  const memory = new Map<string, MessageView[]>()
  /** States reported before the message was in memory (the core reports `pending` before send returns). */
  const earlyStates = new Map<string, { state: MessageState; reason?: string }>()
  /** Where the page older than a served page's first message starts: the oldest history id served, and that message's time. */
  const cursors = new Map<string, { storedBefore?: string; ts: number }>()
  /** The conversation the user has open, so messages there do not count as unread. */
  let openPeer: string | undefined
  const history = (): HistoryService | undefined => services.get('history')

  const web = new WebServer({
    port: options.port,
    onConnection: (connection) => {
      const hello: CoreEvent = {
        type: 'hello',
        phase,
        prefill,
        me,
        history: history() !== undefined,
        problems: startProblems,
        final: refusal !== undefined,
      }
      connection.send(JSON.stringify(hello))
      if (server) connection.send(JSON.stringify({ type: 'server', ...server } satisfies CoreEvent))
      if (phase === 'chat')
        connection.send(JSON.stringify({ type: 'contacts', contacts: contactList() } satisfies CoreEvent))
    },
    onMessage: (connection, text) => void answer(connection, text),
  })
  const broadcast = (event: CoreEvent) => web.broadcast(JSON.stringify(event))
  const setPhase = (next: Phase, problems?: StartProblems) => {
    phase = next
    startProblems = problems
    broadcast({ type: 'phase', phase, problems, final: refusal !== undefined })
  }

  hooks.configure.tapPromise(launcher.name, async (given) => {
    // Without its page the frontend cannot ask anything: a Veto stops the start with the reason, instead of going on.
    await web.listen().catch((error: Error) => {
      throw new Veto(`the ${launcher.name} frontend cannot listen on 127.0.0.1:${options.port}: ${error.message}`)
    })
    const remembered = loadRemembered()
    prefill = {
      name: given.name || remembered.name || '',
      server: given.server !== DEFAULT_SERVER || !remembered.server ? given.server : remembered.server,
    }
    await launcher.launched(web.url, web).catch((error: Error) => {
      throw error instanceof Veto ? error : new Veto(error.message)
    })
    const chosen = await new Promise<Settings>((resolve, reject) => {
      acceptStart = resolve
      cancelStart = reject
    }).finally(() => (acceptStart = cancelStart = undefined))
    rememberSettings(chosen, log)
    setPhase('starting')
    return chosen
  })

  observeFrontendEvents(hooks, launcher.name, (event) => onCoreEvent(event))

  function onCoreEvent(event: FrontendEvent): void {
    switch (event.type) {
      case 'ready': {
        me = event.identity
        broadcast({ type: 'ready', me })
        if (refusal)
          return setPhase('start', {
            name: `${refusal.charAt(0).toUpperCase()}${refusal.slice(1)}. Choose another name and start udsu again.`,
          })
        setPhase('chat')
        void loadConversations()
        refreshPeers()
        refreshTimer = setInterval(refreshPeers, REFRESH_MS)
        return
      }
      case 'server':
        server = {
          online: event.state.online,
          server: event.state.server,
          ...(event.state.current ? { current: event.state.current } : {}),
          reason: event.state.reason,
        }
        return broadcast({ type: 'server', ...server })
      case 'peerDiscovered':
        return updateContact(event.peer, { online: event.online })
      case 'peerConnected':
        updateContact(event.peer, { online: true, path: event.path })
        return broadcast({ type: 'path', peer: event.peer, path: event.path })
      case 'peerLost':
        updateContact(event.peer, { online: event.reason !== 'left', path: undefined })
        return broadcast({ type: 'path', peer: event.peer, reason: event.reason })
      case 'messageState': {
        const { id, to, state, reason } = event.change
        const known = memory.get(to)?.find((m) => m.id === id)
        if (known) Object.assign(known, { state, reason })
        else {
          // Also states of messages from an earlier run (an outbox delivered now): bounded, as nothing may claim them.
          earlyStates.set(id, { state, reason })
          if (earlyStates.size > 1000) earlyStates.delete(earlyStates.keys().next().value as string)
        }
        return broadcast({ type: 'messageState', id, peer: to, state, reason })
      }
      case 'deliver': {
        const { id, from, text, ts } = event.message
        const message: MessageView = { id, peer: from, from, text, ts, out: false }
        remember(message)
        broadcast({ type: 'message', message })
        const contact = contacts.get(from)
        updateContact(from, { online: true, unread: (contact?.unread ?? 0) + (openPeer === from ? 0 : 1) })
        if (openPeer === from)
          void history()
            ?.markRead(from)
            .catch(() => undefined)
        return
      }
      case 'problem': {
        const { source, message, peer, code } = event.problem
        // While starting, a refused registration (a taken name) belongs in the start window.
        if (phase === 'starting' && code === 'registration-refused') refusal = message
        const keyChanged = code === 'key-changed'
        return broadcast({
          type: 'problem',
          source,
          message,
          peer,
          keyChanged,
          ...(keyChanged ? { fingerprint: newKeyNamed(message) } : {}),
        })
      }
      case 'notice':
        return // news during init (a key being generated) comes before the page shows the chat
    }
  }

  hooks.stop.tapPromise({ name: launcher.name, stage: 1000 }, async () => {
    clearInterval(refreshTimer)
    // Stopped (a signal) while the start window waits: nothing started, so the start is cancelled.
    cancelStart?.(new Cancelled('stopped at the start window'))
    await web.close()
  })

  // ── contacts ──

  function contactList(): ContactView[] {
    return [...contacts.values()]
      .filter((c) => c.name !== me?.name)
      .sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name))
  }

  function updateContact(name: string, change: Partial<ContactView>): void {
    if (name === me?.name) return
    const contact = contacts.get(name) ?? { name, online: false, unread: 0 }
    contacts.set(name, { ...contact, ...change, name })
    broadcast({ type: 'contacts', contacts: contactList() })
  }

  function refreshPeers(): void {
    chat.peers().then(
      (peers) => {
        for (const peer of peers) {
          const contact = contacts.get(peer.name) ?? { name: peer.name, online: false, unread: 0 }
          contacts.set(peer.name, { ...contact, online: peer.online, path: peer.path })
        }
        broadcast({ type: 'contacts', contacts: contactList() })
      },
      (error: Error) => log.debug(`could not list peers: ${error.message}`),
    )
  }

  /** Conversations the history plugin kept, with their unread counts, join the contact list. */
  async function loadConversations(): Promise<void> {
    const kept = await history()
      ?.conversations()
      .catch(() => undefined)
    for (const { peer, unread } of kept ?? []) updateContact(peer, { unread })
  }

  // ── messages ──

  function remember(message: MessageView): void {
    const list = memory.get(message.peer) ?? []
    if (list.some((m) => m.id === message.id && m.from === message.from)) return
    list.push(message)
    if (list.length > MEMORY_PER_PEER) list.splice(0, list.length - MEMORY_PER_PEER)
    memory.set(message.peer, list)
  }

  const fromStored = (stored: StoredMessage): MessageView => ({
    id: stored.id,
    peer: stored.peer,
    from: stored.from,
    text: stored.text,
    ts: stored.ts,
    out: stored.out,
    ...(stored.state ? { state: stored.state } : {}),
  })

  /** A page of a conversation, oldest first: from the history plugin when there is one, with this session's messages. */
  async function page(peer: string, before?: string): Promise<HistoryPage> {
    const kept = history()
    const inMemory = memory.get(peer) ?? []
    if (!kept) {
      const end = before === undefined ? inMemory.length : inMemory.findIndex((m) => m.id === before)
      const upTo = end < 0 ? 0 : end
      const start = Math.max(0, upTo - PAGE_SIZE)
      return { messages: inMemory.slice(start, upTo), more: start > 0 }
    }
    const cursor = before === undefined ? undefined : cursors.get(before)
    if (before !== undefined && !cursor)
      throw new Error('no page was served before that message: open the conversation again')
    // The history service pages by its own ids: a message of this session shown first may not be one of them.
    const stored =
      cursor && cursor.storedBefore === undefined
        ? []
        : (
            await kept.page(peer, {
              limit: PAGE_SIZE,
              ...(cursor?.storedBefore ? { before: cursor.storedBefore } : {}),
            })
          ).map(fromStored)
    const more = stored.length === PAGE_SIZE
    // This session's messages that history does not have (yet) are merged in by time, within the span this page covers.
    const newest = cursor?.ts ?? Infinity
    const oldest = more ? stored[0].ts : -Infinity
    const ids = new Set(stored.map((m) => m.id))
    const extra = inMemory.filter((m) => !ids.has(m.id) && m.ts >= oldest && m.ts < newest)
    const messages = [...stored, ...extra].sort((a, b) => a.ts - b.ts)
    if (messages.length) cursors.set(messages[0].id, { storedBefore: stored[0]?.id, ts: messages[0].ts })
    if (cursors.size > 10_000) cursors.delete(cursors.keys().next().value as string)
    return { messages, more }
  }

  function search(query: string, peer?: string): SearchResult[] {
    const needle = query.trim().toLowerCase()
    if (!needle) return []
    const results: SearchResult[] = []
    for (const [name, list] of memory) {
      if (peer && name !== peer) continue
      for (const message of list) {
        const haystack = message.text.toLowerCase()
        const matches: Array<[number, number]> = []
        for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + needle.length))
          matches.push([at, at + needle.length])
        if (matches.length) results.push({ message, matches })
      }
    }
    return results.sort((a, b) => b.message.ts - a.message.ts).slice(0, 100)
  }

  // ── requests ──

  async function answer(connection: BridgeConnection, text: string): Promise<void> {
    const envelope = parseRequestEnvelope(text)
    const reply = (event: CoreEvent) => connection.send(JSON.stringify(event))
    if ('error' in envelope) return reply({ type: 'reply', id: envelope.id ?? -1, ok: false, error: envelope.error })
    try {
      const result = await handle(envelope.request)
      reply({ type: 'reply', id: envelope.id, ok: true, result })
    } catch (error) {
      reply({ type: 'reply', id: envelope.id, ok: false, error: (error as Error).message })
    }
  }

  function handle(request: CoreRequest): Promise<RequestResults[RequestType]> {
    const handler = handlers[request.type] as (request: CoreRequest) => Promise<RequestResults[RequestType]>
    return handler(request)
  }

  const needChat = () => {
    if (phase !== 'chat') throw new Error('the chat has not started yet')
  }
  /** Export and import are the history plugin's files: without it there is nothing kept to export or import into. */
  const needHistory = (): HistoryService => {
    const kept = history()
    if (!kept) throw new Error('export and import need the history plugin')
    return kept
  }

  const handlers: { [K in RequestType]: (request: RequestOf<K>) => Promise<RequestResults[K]> } = {
    async start({ name, server: address }) {
      if (!acceptStart || phase !== 'start')
        throw new Error(phase === 'start' ? 'the client cannot start again: restart udsu' : 'already started')
      const chosen = { name: name.trim(), server: address.trim() }
      const problems = await checkSettings(chosen)
      if (Object.keys(problems).length) {
        startProblems = problems
        prefill = chosen
        broadcast({ type: 'phase', phase, problems })
        return null
      }
      acceptStart?.(chosen)
      return null
    },
    async send({ to, text }) {
      needChat()
      const sent = await chat.send(to, text)
      const early = earlyStates.get(sent.id)
      earlyStates.delete(sent.id)
      const message: MessageView = {
        id: sent.id,
        peer: to,
        from: sent.from,
        text: sent.text,
        ts: sent.ts,
        out: true,
        state: early?.state ?? 'pending',
        ...(early?.reason ? { reason: early.reason } : {}),
      }
      remember(message)
      if (!contacts.has(to)) updateContact(to, {})
      broadcast({ type: 'message', message })
      return message
    },
    async open({ peer }) {
      needChat()
      openPeer = peer
      if (contacts.get(peer)?.unread) updateContact(peer, { unread: 0 })
      else if (!contacts.has(peer)) updateContact(peer, {})
      await history()
        ?.markRead(peer)
        .catch(() => undefined)
      // A path opened now makes the first message quicker; peerConnected reports it, a failure is not an error here.
      chat.connect(peer).catch((error: Error) => log.debug(`no path to ${peer} yet: ${error.message}`))
      return page(peer)
    },
    async history({ peer, before }) {
      needChat()
      return page(peer, before)
    },
    async search({ query, peer }) {
      needChat()
      const kept = history()
      if (!kept) return search(query, peer)
      const hits = await kept.search(query, { ...(peer ? { peer } : {}), limit: 100 })
      return hits.map((hit) => ({ message: fromStored(hit.message), matches: hit.matches }))
    },
    async safetyNumber({ peer }) {
      needChat()
      return chat.fingerprintOf(peer) ?? null
    },
    async acceptKey({ peer, fingerprint }) {
      needChat()
      const said: { info: string[]; error: string[] } = { info: [], error: [] }
      // The key the user saw, not whatever the peer's key is by now: /trust refuses if it changed again since.
      await commands.run(`/trust ${peer} ${fingerprint}`, {
        info: (line) => said.info.push(line),
        error: (line) => said.error.push(line),
        current: peer,
      })
      if (said.error.length) throw new Error(said.error.join('\n'))
      broadcast({ type: 'keyAccepted', peer })
      return said.info.join('\n')
    },
    async export({ peer }): Promise<ExportFile> {
      needChat()
      // The file `udsu history export --format json` writes: the CLI, another profile and this page all read it back.
      const text = await needHistory().exportText({ ...(peer === undefined ? {} : { peer }), format: 'json' })
      const day = new Date().toISOString().slice(0, 10)
      return { fileName: `udsu-${me?.name ?? 'me'}-${peer ?? 'all'}-${day}.json`, text }
    },
    async import({ text, file }) {
      needChat()
      // A Telegram chat's partner becomes the open conversation; a bad file throws naming every problem, nothing changed.
      const report = await needHistory().importText(text, {
        ...(openPeer === undefined ? {} : { peer: openPeer }),
        file: file ?? 'the file',
      })
      // Imported conversations join the contact list; the renderer reloads the open one's page from history.
      await loadConversations()
      return { imported: report.added, skipped: report.skipped, refused: report.refused }
    },
    async quit() {
      quit()
      return null
    },
  }

  function quit(): void {
    if (cancelStart) cancelStart(new Cancelled('left at the start window'))
    else void chat.stop()
  }

  function fail(reason: string): void {
    if (cancelStart) return cancelStart(new Veto(reason))
    log.error(reason)
    void chat.stop()
  }

  return { server: web, quit, fail }
}

/** udsu's data folder, where profiles live too: $XDG_DATA_HOME/udsu or ~/.local/share/udsu. */
function dataFolder(): Profile {
  return new Profile(path.dirname(defaultProfileDir('default')))
}

function loadRemembered(): Partial<Settings> {
  try {
    const raw = dataFolder().readJson<Record<string, unknown>>(REMEMBERED_FILE)
    return {
      ...(typeof raw?.name === 'string' ? { name: raw.name } : {}),
      ...(typeof raw?.server === 'string' ? { server: raw.server } : {}),
    }
  } catch {
    return {}
  }
}

function rememberSettings(settings: Settings, log: { warn(message: string): void }): void {
  try {
    dataFolder().writeJson(REMEMBERED_FILE, { name: settings.name, server: settings.server })
  } catch (error) {
    log.warn(`could not remember the settings in ${REMEMBERED_FILE}: ${(error as Error).message}`)
  }
}

/**
 * The new key's fingerprint in a key-changed warning ("… (was A, now B). …", as the rsa plugin words it), or undefined.
 * The page shows the warning and sends this back when the user accepts, so the key pinned is the one shown.
 */
export function newKeyNamed(warning: string): string | undefined {
  return /\bnow ([0-9a-f]{4}(?: [0-9a-f]{4})+)\)/.exec(warning)?.[1]
}
