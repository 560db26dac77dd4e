// Services that plugins offer each other, by name: a plugin provides one in `create`, others get it from `init` on.
import type { ChatMessage, MessageState } from './types'

/** A message as history keeps it: one's own (`out`) with its delivery state, or one received. */
export interface StoredMessage extends ChatMessage {
  /** The other side of the conversation. */
  peer: string
  /** True for a message this user wrote. */
  out: boolean
  /** Delivery state of one's own message. */
  state?: MessageState
  /** When this client stored it (ms); `ts` is the sender's clock. */
  storedAt: number
}

/** One conversation as a contact list shows it. */
export interface ConversationSummary {
  peer: string
  last?: StoredMessage
  unread: number
}

/** A search result: the message, and the text with each match between `«` and `»` markers given as ranges. */
export interface SearchHit {
  message: StoredMessage
  /** [start, end) UTF-16 offsets of each match in `message.text`. */
  matches: Array<[number, number]>
}

/** What the history plugin offers: conversations kept on disk, searchable. */
export interface HistoryService {
  /** Up to `limit` messages of a conversation, oldest first: the latest, or those just before the message `before`. */
  page(peer: string, options?: { limit?: number; before?: string }): Promise<StoredMessage[]>
  /** Messages matching the words of `query`, best first, in one conversation or all. */
  search(query: string, options?: { peer?: string; limit?: number }): Promise<SearchHit[]>
  /** Every conversation with its last message and unread count, most recent first. */
  conversations(): Promise<ConversationSummary[]>
  /** The user has seen every message of a conversation: its unread count drops to 0. */
  markRead(peer: string): Promise<void>
  /** Stores a message (e.g. one a plugin made or fetched); false if one with the same sender and id is already there. */
  append(message: StoredMessage): Promise<boolean>
  /** How many messages are stored, in one conversation or all. */
  count(peer?: string): Promise<number>
  /** History as udsu's JSON export (docs/history-export.schema.json), or as txt or html for people: the file the CLI writes. */
  exportText(options: { peer?: string; format: 'json' | 'txt' | 'html' }): Promise<string>
  /** Merges an export (ours, or a Telegram chat whose partner becomes `peer`) by message id, in one transaction; throws
   *  naming every problem, with nothing changed, for a bad file. */
  importText(
    text: string,
    options?: { peer?: string; file?: string },
  ): Promise<{ added: number; skipped: number; refused: number }>
}

/** What one attempt to start the embedded rendezvous server came to. */
export type EmbeddedAttempt =
  /** Listening in this client: register with it. */
  | { kind: 'started' }
  /** The port is taken, for the first time: perhaps by a udsu server starting this very moment, so ask it once more. */
  | { kind: 'ask-again' }
  /** Taken again, and nothing there answered as a udsu server: `reason` for the server state; `tell` once, for the user. */
  | { kind: 'held'; reason: string; tell?: string }
  /** Not on this machine, or it could not start for another reason (logged): carry on as when no server answers. */
  | { kind: 'failed' }

/** What the embedded-server plugin offers: a rendezvous server started inside this client, so path plugins never import the server. */
export interface EmbeddedServerService {
  /** Called when the configured server (`host:port`) does not answer: starts one there if the address is this machine's. */
  start(address: string): Promise<EmbeddedAttempt>
}

/** Every service by name; a third-party plugin adds its own by declaration merging (`declare module 'udsu'`). */
export interface ServiceMap {
  history: HistoryService
  'embedded-server': EmbeddedServerService
}

export class ServiceRegistry {
  private readonly services = new Map<string, { service: unknown; by: string }>()

  /** Offers a service under its name; a second provider of the same name is a configuration error naming both. */
  provide<K extends keyof ServiceMap>(name: K, service: ServiceMap[K], by: string): void {
    const existing = this.services.get(name)
    if (existing) throw new Error(`plugins "${existing.by}" and "${by}" both provide the service "${name}"`)
    this.services.set(name, { service, by })
  }

  /** The service of that name, or undefined when no configured plugin provides it. */
  get<K extends keyof ServiceMap>(name: K): ServiceMap[K] | undefined {
    return this.services.get(name)?.service as ServiceMap[K] | undefined
  }
}
