// The terminal frontend: a start screen for name and server, then contacts, conversations, a status bar and an input line.
import {
  Cancelled,
  definePlugin,
  observeFrontendEvents,
  type CommandOutput,
  type CoreServices,
  type Settings,
} from '../../core'
import { ChatView } from './chat-screen'
import { registerCommands } from './commands'
import { themeFromEnv } from './format'
import { ChatModel } from './model'
import { askSettings, editKey } from './start-screen'
import { loadRemembered, prefill, REMEMBERED_FILE, saveRemembered } from './settings'
import { Terminal, type Key } from './terminal'

type Deps = Pick<CoreServices, 'hooks' | 'chat' | 'commands' | 'me' | 'settings' | 'services'>

/** How often the contact list asks who is online, besides peer events. */
const REFRESH_MS = 5000
/** Messages of each conversation loaded from history at start, and per PgUp past the top. */
const HISTORY_PAGE = 50

export default definePlugin<Record<string, never>, Deps>({
  name: 'tui',
  provides: ['frontend'],
  usesTerminal: true,
  create(deps) {
    createTui(deps)
  },
})

function createTui({ hooks, chat, commands, me, settings, services }: Deps): void {
  const theme = themeFromEnv()
  const model = new ChatModel(me.name)
  let terminal: Terminal | undefined
  const term = () => (terminal ??= new Terminal())
  let view: ChatView | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  let refreshSoon: NodeJS.Timeout | undefined
  let stopping = false
  /** A pasted CR LF is one line break: the LF after a pasted CR is skipped. */
  let afterPastedCR = false

  const output: CommandOutput = {
    info: (text) => model.notice(text),
    error: (text) => model.notice(text, 'error'),
    get current() {
      return model.current
    },
    showHits: (query, hits) => {
      model.showHits(query, hits)
      view?.follow()
    },
  }

  async function startScreen(given: Settings): Promise<Settings> {
    const remembered = loadRemembered()
    const note = remembered.problem && `Ignored the remembered settings: ${remembered.problem}`
    const chosen = await askSettings(term(), prefill(given, remembered.settings), theme, note)
    // Nothing has started yet (no sockets, no files): the core stops cleanly and the CLI exits with 0.
    if (!chosen) throw new Cancelled('left at the start screen')
    try {
      saveRemembered(chosen)
    } catch (error) {
      model.problem(`could not remember the settings in ${REMEMBERED_FILE}: ${(error as Error).message}`)
    }
    return chosen
  }

  hooks.configure.tapPromise('tui', startScreen)

  hooks.init.tapPromise({ name: 'tui', stage: -1000 }, async () => {
    model.me = me.name
    showChat()
  })

  // After history's own init (stage -500): conversations, unread counts and the last page of each come back after a restart.
  hooks.init.tapPromise('tui', async () => {
    const history = services.get('history')
    if (!history) return
    model.onRead = (peer) =>
      void history.markRead(peer).catch((error: Error) => model.problem(`history: ${error.message}`))
    const conversations = await history.conversations()
    model.restoreConversations(conversations)
    for (const { peer } of conversations) {
      const page = await history.page(peer, { limit: HISTORY_PAGE })
      model.prependHistory(peer, page, page.length < HISTORY_PAGE)
    }
  })

  /** PgUp at the top of a conversation: the page of history before the oldest message shown. */
  let loadingOlder = false
  function loadOlder(peer: string): void {
    const history = services.get('history')
    const before = model.oldestMessage(peer)
    if (!history || before === undefined || !model.mayHaveOlder(peer) || loadingOlder) return
    loadingOlder = true
    history
      .page(peer, { before, limit: HISTORY_PAGE })
      .then((page) => {
        if (page.length && model.current === peer) view?.keepPlaceOnPrepend()
        model.prependHistory(peer, page, page.length < HISTORY_PAGE)
      })
      .catch((error: Error) => model.problem(`history: ${error.message}`))
      .finally(() => (loadingOlder = false))
  }

  function showChat(): void {
    const screen = new ChatView(term(), model, theme)
    view = screen
    model.onChange(() => screen.requestDraw())
    term().onKey(onChatKey)
    model.notice(`Starting as ${me.name}, server ${settings.server}…`)
  }

  function onChatKey(key: Key): void {
    if (!view) return
    const editor = view.editor
    const wasPastedCR = afterPastedCR
    afterPastedCR = false
    if (key.full === 'C-c') return quit()
    if (key.full === 'enter') return // blessed's echo of 'return' for the same CR
    if (key.pasted && key.full === 'return') {
      editor.insert('\n')
      afterPastedCR = true
    } else if (key.full === 'linefeed') {
      if (!(key.pasted && wasPastedCR)) editor.insert('\n')
    } else if (key.full === 'return') {
      submit(editor.submit())
    } else if (key.full === 'up') editor.previous()
    else if (key.full === 'down') editor.next()
    else if (key.full === 'tab') model.cycle(1)
    else if (key.full === 'S-tab') model.cycle(-1)
    else if (key.full === 'pageup') {
      if (view.atTop() && model.current !== undefined) loadOlder(model.current)
      else view.scrollPage(-1)
    } else if (key.full === 'pagedown') view.scrollPage(1)
    else if (/^M-[1-9]$/.test(key.full)) model.select(Number(key.full.slice(2)))
    else editKey(editor, key)
    view.requestDraw()
  }

  function submit(line: string): void {
    if (!line.trim()) return
    if (line.startsWith('/') && !line.startsWith('//')) return void commands.run(line, output)
    const to = model.current
    if (to === undefined) {
      return model.notice(
        'No conversation is open: pick one with Tab or Alt+1..9, or type /open NAME or /msg NAME TEXT.',
        'error',
      )
    }
    send(to, line.startsWith('//') ? line.slice(1) : line)
  }

  function send(to: string, text: string): void {
    chat.send(to, text).then(
      (message) => model.addOwn(message),
      (error: Error) => model.notice(`not sent: ${error.message}`, 'error', to),
    )
  }

  function quit(): void {
    if (stopping) return
    stopping = true
    model.notice('Leaving…')
    // The stop hook below gives the terminal back; the CLI exits once the client has stopped.
    chat
      .stop()
      .finally(() => terminal?.destroy())
      .catch((error: Error) => process.stderr.write(`udsu: stopping failed: ${error.message}\n`))
  }

  registerCommands(commands, { chat, model, send, quit })

  function refreshPeers(): void {
    chat.peers().then(
      (peers) => model.updatePeers(peers),
      (error: Error) => model.problem(`could not list peers: ${error.message}`),
    )
  }

  /** Peer events come in bursts; one refresh after the burst is enough. */
  function scheduleRefresh(): void {
    if (refreshSoon || !refreshTimer) return
    refreshSoon = setTimeout(() => {
      refreshSoon = undefined
      refreshPeers()
    }, 300)
  }

  observeFrontendEvents(hooks, 'tui', (event) => {
    switch (event.type) {
      case 'ready':
        model.me = event.identity.name
        model.notice(`You are ${event.identity.name}. Your fingerprint: ${event.identity.fingerprint}`)
        refreshPeers()
        refreshTimer = setInterval(refreshPeers, REFRESH_MS)
        return
      case 'server':
        return model.setServer(event.state)
      case 'peerDiscovered':
        model.updatePeer(event.peer, { online: event.online })
        return scheduleRefresh()
      case 'peerConnected': {
        const { peer, path } = event
        model.updatePeer(peer, { online: true, path })
        if (model.hasConversation(peer)) model.notice(`${path} path to ${peer} open`, 'info', peer)
        return
      }
      case 'peerLost': {
        const { peer, reason } = event
        model.updatePeer(peer, { online: reason !== 'left', path: undefined })
        if (model.hasConversation(peer))
          model.notice(reason === 'left' ? `${peer} left` : `lost the path to ${peer}: ${reason}`, 'info', peer)
        return scheduleRefresh()
      }
      case 'messageState':
        return model.setDelivery(event.change)
      case 'deliver':
        return model.addIncoming(event.message)
      case 'problem': {
        const { source, message, peer } = event.problem
        return model.problem(`${source}: ${message}`, peer)
      }
      case 'notice':
        return model.notice(event.notice.message)
    }
  })
  hooks.stop.tap({ name: 'tui', stage: 1000 }, () => {
    clearInterval(refreshTimer)
    clearTimeout(refreshSoon)
    refreshTimer = undefined
    terminal?.destroy()
  })
}
