// The headless frontend: one JSON object per line on stdin and stdout, for scripts, bots and tests.
import {
  definePlugin,
  observeFrontendEvents,
  type Chat,
  type CommandRegistry,
  type CoreServices,
  type ServiceRegistry,
  type StoredMessage,
} from '../../core'
import { readJsonLines } from './json-lines'

/** Longest input line accepted; a longer one is refused whole rather than cut. */
export const MAX_LINE_BYTES = 256 * 1024

type Deps = Pick<CoreServices, 'hooks' | 'chat' | 'commands' | 'services'>
type Output = Record<string, unknown> & { type: string }

export default definePlugin<Record<string, never>, Deps>({
  name: 'headless',
  provides: ['frontend'],
  create({ hooks, chat, commands, services }) {
    commands.register({
      name: 'help',
      usage: '/help',
      description: 'lists the commands',
      run: (_, out) => out.info(commands.help().join('\n')),
    })
    const emit = (event: Output): void => void process.stdout.write(jsonLine(event))
    const fail = (message: string, extra: Record<string, unknown> = {}) => emit({ type: 'error', message, ...extra })

    // Each event becomes one JSON line; names and fields are the contract in the README ("The headless frontend").
    observeFrontendEvents(hooks, 'headless', (event) => {
      switch (event.type) {
        case 'ready': {
          const { name, fingerprint } = event.identity
          emit({ type: 'ready', name, fingerprint })
          return readCommands({ chat, commands, services }, emit, fail)
        }
        case 'server': {
          const { online, server, current, reason } = event.state
          return emit({
            type: 'server',
            online,
            server,
            ...(current ? { current } : {}),
            ...(reason ? { reason } : {}),
          })
        }
        case 'peerConnected':
          return emit({ type: 'connected', peer: event.peer, path: event.path })
        case 'peerLost':
          return emit({ type: 'lost', peer: event.peer, reason: event.reason })
        case 'messageState': {
          const { id, to, state, reason } = event.change
          if (state === 'failed') return fail(`message to ${to} failed: ${reason}`, { id, to })
          return emit({ type: state, to, id })
        }
        case 'deliver': {
          // Resolves once the line is handed to the OS (the write callback), so "acknowledged" means it left this process:
          // a full pipe holds the peer's ACK back rather than losing an acknowledged line to a kill.
          const { from, text, id, ts } = event.message
          const line = jsonLine({ type: 'message', from, text, id, ts })
          return new Promise<void>((resolve, reject) =>
            process.stdout.write(line, (error) => (error ? reject(error) : resolve())),
          )
        }
        case 'problem': {
          const { message, peer } = event.problem
          return fail(message, peer ? { peer } : {})
        }
        case 'peerDiscovered':
        case 'notice':
          return // not part of the JSON-lines contract: scripts ask with "peers"; notices are for people
      }
    })
  },
})

/** Characters JSON leaves raw that many line readers (Python's splitlines, JavaScript before ES2019) take for line ends. */
const LINE_BREAKS_JSON_KEEPS = /[\u0085\u2028\u2029]/g

/** One event as one line for any JSON-lines reader: what a peer sent cannot split it. */
export function jsonLine(value: unknown): string {
  return (
    JSON.stringify(value).replace(
      LINE_BREAKS_JSON_KEEPS,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ) + '\n'
  )
}

interface Services {
  chat: Chat
  commands: CommandRegistry
  services: ServiceRegistry
}

/** A stored message as a `message` event, with `out` and, for one's own, its delivery `state`. */
function messageEvent(m: StoredMessage): Output {
  return {
    type: 'message',
    from: m.from,
    text: m.text,
    id: m.id,
    ts: m.ts,
    out: m.out,
    ...(m.out && m.state ? { state: m.state } : {}),
  }
}

/** What a refused message's error says about it (MessageRefused carries `id` and `to`), for the error event. */
function messageOf(error: Error): Record<string, unknown> {
  const { id, to } = error as Error & { id?: unknown; to?: unknown }
  return typeof id === 'string' && typeof to === 'string' ? { id, to } : {}
}

function readCommands(
  services: Services,
  emit: (event: Output) => void,
  fail: (message: string, extra?: Record<string, unknown>) => void,
) {
  readJsonLines(process.stdin, MAX_LINE_BYTES, {
    tooLong: () => fail(`input line longer than ${MAX_LINE_BYTES} bytes ignored`),
    end: () => void services.chat.stop(),
    line: (line) => {
      if (!line.trim()) return
      let command: Record<string, unknown>
      try {
        const parsed: unknown = JSON.parse(line)
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object')
        command = parsed as Record<string, unknown>
      } catch {
        return fail(`not a JSON object: ${line.slice(0, 80)}`)
      }
      run(services, command, emit).catch((error: Error) => fail(error.message, messageOf(error)))
    },
  })
}

async function run(
  { chat, commands, services }: Services,
  command: Record<string, unknown>,
  emit: (event: Output) => void,
): Promise<void> {
  switch (command.type) {
    case 'send': {
      if (typeof command.to !== 'string' || typeof command.text !== 'string')
        throw new Error('send needs "to" and "text" strings')
      await chat.send(command.to, command.text)
      return
    }
    case 'peers':
      return emit({ type: 'peers', peers: await chat.peers() })
    case 'connect': {
      if (typeof command.peer !== 'string') throw new Error('connect needs a "peer" string')
      return emit({ type: 'connected', peer: command.peer, path: await chat.connect(command.peer) })
    }
    case 'fingerprint': {
      if (typeof command.peer !== 'string')
        return emit({ type: 'fingerprint', name: chat.identity.name, fingerprint: chat.identity.fingerprint })
      const safetyNumber = chat.fingerprintOf(command.peer)
      if (!safetyNumber) throw new Error(`no key known for ${command.peer} yet: connect or send first`)
      return emit({ type: 'fingerprint', peer: command.peer, safetyNumber })
    }
    case 'command': {
      // Any slash command a plugin registered (/trust, /help, …), with its output as info and error events.
      if (typeof command.line !== 'string') throw new Error('command needs a "line" string, e.g. "/help"')
      return commands.run(command.line, {
        info: (text) => emit({ type: 'info', text }),
        error: (message) => emit({ type: 'error', message }),
      })
    }
    case 'history': {
      const history = services.get('history')
      if (!history) throw new Error('history is off: add "history" to the plugins in the config')
      const { peer, limit, before } = command
      if (typeof peer !== 'string') throw new Error('history needs a "peer" string')
      if (limit !== undefined && typeof limit !== 'number') throw new Error('history\'s "limit" must be a number')
      if (before !== undefined && typeof before !== 'string')
        throw new Error('history\'s "before" must be a message id')
      const messages = await history.page(peer, { limit, before })
      return emit({ type: 'history', peer, messages: messages.map(messageEvent) })
    }
    case 'search': {
      const history = services.get('history')
      if (!history) throw new Error('history is off: add "history" to the plugins in the config')
      const { query, peer, limit } = command
      if (typeof query !== 'string') throw new Error('search needs a "query" string')
      if (peer !== undefined && typeof peer !== 'string') throw new Error('search\'s "peer" must be a string')
      if (limit !== undefined && typeof limit !== 'number') throw new Error('search\'s "limit" must be a number')
      const hits = await history.search(query, { peer, limit })
      return emit({
        type: 'search',
        query,
        results: hits.map(({ message, matches }) => ({ ...messageEvent(message), peer: message.peer, matches })),
      })
    }
    case 'quit':
      return chat.stop()
    default:
      throw new Error(
        `unknown command type ${JSON.stringify(command.type)}; expected send, peers, connect, fingerprint, history, search, command or quit`,
      )
  }
}
