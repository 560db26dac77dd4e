// The bridge protocol between the core and the renderer, the one definition both sides use: the web frontend's server
// checks every request with `parseRequestEnvelope`; the renderer (a browser page or Electron's) imports only the types.
import { NAME_PATTERN, type Identity, type MessageState, type PathKind, type Settings } from '../../core'

/** Largest bridge message accepted, in bytes: an imported history file travels in one. */
export const MAX_BRIDGE_MESSAGE_BYTES = 8 * 1024 * 1024
/** Longest search query, in characters. */
export const MAX_QUERY_CHARS = 200

/** A message as the chat window shows it. */
export interface MessageView {
  id: string
  /** The other side of the conversation. */
  peer: string
  from: string
  text: string
  /** The sender's clock, ms. */
  ts: number
  /** True for one's own message. */
  out: boolean
  /** Delivery state of one's own message. */
  state?: MessageState
  /** Why, when `state` is `failed`. */
  reason?: string
}

export interface ContactView {
  name: string
  online: boolean
  path?: PathKind
  unread: number
}

/** Where the app is: the start window, waiting for the client to start, or the chat window. */
export type Phase = 'start' | 'starting' | 'chat'

/** Problems with what was typed in the start window, each shown under its field; `form` under the button. */
export interface StartProblems {
  name?: string
  server?: string
  form?: string
}

export interface HistoryPage {
  messages: MessageView[]
  /** True when older messages exist (scrolling up loads them). */
  more: boolean
}

export interface SearchResult {
  message: MessageView
  /** [start, end) UTF-16 offsets of each match in the text. */
  matches: Array<[number, number]>
}

/** An exported history, the file `udsu history export --format json` writes: what the renderer saves, and reads back on import. */
export interface ExportFile {
  fileName: string
  text: string
}

/** Core → renderer. */
export type CoreEvent =
  | {
      type: 'hello'
      phase: Phase
      prefill: Settings
      me?: Identity
      history: boolean
      problems?: StartProblems
      final?: boolean
    }
  /** `final`: this start window cannot start the client any more (a taken name): udsu must be started again. */
  | { type: 'phase'; phase: Phase; problems?: StartProblems; final?: boolean }
  | { type: 'ready'; me: Identity }
  | { type: 'server'; online: boolean; server: string; current?: string; reason?: string }
  | { type: 'contacts'; contacts: ContactView[] }
  | { type: 'path'; peer: string; path?: PathKind; reason?: string }
  | { type: 'message'; message: MessageView }
  | { type: 'messageState'; id: string; peer: string; state: MessageState; reason?: string }
  /** `fingerprint`: on a key change, the new key's fingerprint the warning names; accepting sends it back (acceptKey). */
  | { type: 'problem'; source: string; message: string; peer?: string; keyChanged: boolean; fingerprint?: string }
  | { type: 'keyAccepted'; peer: string }
  | ReplyEvent

/** Renderer → core. Each is answered by one `reply` with the same id. */
export type CoreRequest =
  | { type: 'start'; name: string; server: string }
  | { type: 'send'; to: string; text: string }
  /** Opens a conversation: its latest messages, marked read, and a path opened ahead of the first message. */
  | { type: 'open'; peer: string }
  /** Older messages of a conversation, before the message `before`. */
  | { type: 'history'; peer: string; before: string }
  | { type: 'search'; query: string; peer?: string }
  | { type: 'safetyNumber'; peer: string }
  /** Accepts a peer's changed key, the one with the fingerprint the warning showed (the rsa plugin's /trust NAME FINGERPRINT). */
  | { type: 'acceptKey'; peer: string; fingerprint: string }
  | { type: 'export'; peer?: string }
  | { type: 'import'; text: string; file?: string }
  | { type: 'quit' }

/** What each request's reply carries. */
export interface RequestResults {
  start: null
  send: MessageView
  open: HistoryPage
  history: HistoryPage
  search: SearchResult[]
  safetyNumber: string | null
  acceptKey: string
  export: ExportFile
  /** Messages added, those already there (same sender and id), and those refused (e.g. a Telegram service message). */
  import: { imported: number; skipped: number; refused: number }
  quit: null
}

export type RequestType = CoreRequest['type']
export type RequestOf<K extends RequestType> = Extract<CoreRequest, { type: K }>

export type ReplyEvent =
  | { type: 'reply'; id: number; ok: true; result: RequestResults[RequestType] }
  | { type: 'reply'; id: number; ok: false; error: string }

export interface RequestEnvelope {
  id: number
  request: CoreRequest
}

/** What Electron's preload exposes to the renderer as `window.udsuDesktop`; nothing else of Electron or Node is reachable. */
export interface DesktopBridge {
  /** Sends a request envelope to the core. */
  send(envelope: RequestEnvelope): void
  /** Calls `listener` with every core event, in order. */
  onEvent(listener: (event: CoreEvent) => void): void
  /** Asks where to save `text` (a save dialog); resolves false when the user cancelled. */
  saveFile(suggestedName: string, text: string): Promise<boolean>
  /** Asks for a file to open (an open dialog); resolves with its text, or undefined when cancelled. */
  openFile(): Promise<string | undefined>
  /** Shows a desktop notification. */
  notify(title: string, body: string): void
}

const isName = (value: unknown): value is string => typeof value === 'string' && NAME_PATTERN.test(value)
const isText = (value: unknown, max: number): value is string => typeof value === 'string' && value.length <= max
/** A key fingerprint as a warning shows it: hex digits in groups (rsa: 16 groups of 4), nothing that could add to a command line. */
const isFingerprint = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]+( [0-9a-f]+)*$/.test(value) && value.length <= 200

/** Checks one raw bridge message from a renderer: a request envelope, or the reason it is not one (and its id, if readable). */
export function parseRequestEnvelope(raw: string): RequestEnvelope | { id?: number; error: string } {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return { error: 'not JSON' }
  }
  if (typeof value !== 'object' || value === null) return { error: 'not an object' }
  const { id, request } = value as { id?: unknown; request?: unknown }
  if (!Number.isSafeInteger(id) || (id as number) < 0) return { error: 'the envelope needs a numeric id' }
  const checked = parseRequest(request)
  return typeof checked === 'string' ? { id: id as number, error: checked } : { id: id as number, request: checked }
}

/** A request with every field checked, or what is wrong with it. */
export function parseRequest(value: unknown): CoreRequest | string {
  if (typeof value !== 'object' || value === null) return 'the request must be an object'
  const r = value as Record<string, unknown>
  switch (r.type) {
    case 'start':
      // The start window shows its own problems for these: only the types are checked here.
      return isText(r.name, 100) && isText(r.server, 300)
        ? { type: 'start', name: r.name, server: r.server }
        : 'start needs name and server strings'
    case 'send':
      return isName(r.to) && isText(r.text, MAX_BRIDGE_MESSAGE_BYTES)
        ? { type: 'send', to: r.to, text: r.text }
        : 'send needs a peer name "to" and a "text"'
    case 'open':
    case 'safetyNumber':
      return isName(r.peer) ? { type: r.type, peer: r.peer } : `${r.type} needs a peer name`
    case 'acceptKey':
      return isName(r.peer) && isFingerprint(r.fingerprint)
        ? { type: 'acceptKey', peer: r.peer, fingerprint: r.fingerprint }
        : 'acceptKey needs a peer name and the "fingerprint" (hex digits, spaces allowed) the warning showed'
    case 'history':
      return isName(r.peer) && isText(r.before, 200)
        ? { type: 'history', peer: r.peer, before: r.before }
        : 'history needs a peer name and a message id "before"'
    case 'search':
      if (!isText(r.query, MAX_QUERY_CHARS)) return `search needs a query of at most ${MAX_QUERY_CHARS} characters`
      if (r.peer !== undefined && !isName(r.peer)) return 'search: "peer" must be a peer name'
      return r.peer === undefined
        ? { type: 'search', query: r.query }
        : { type: 'search', query: r.query, peer: r.peer }
    case 'export':
      if (r.peer !== undefined && !isName(r.peer)) return 'export: "peer" must be a peer name'
      return r.peer === undefined ? { type: 'export' } : { type: 'export', peer: r.peer }
    case 'import':
      if (!isText(r.text, MAX_BRIDGE_MESSAGE_BYTES)) return "import needs the file's text"
      if (r.file !== undefined && !isText(r.file, 255))
        return 'import: "file" must be a file name of at most 255 characters'
      return r.file === undefined ? { type: 'import', text: r.text } : { type: 'import', text: r.text, file: r.file }
    case 'quit':
      return { type: 'quit' }
    default:
      return `unknown request type ${JSON.stringify(r.type)}`
  }
}
