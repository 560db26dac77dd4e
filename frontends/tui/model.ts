// What the chat screen shows, as data: contacts, conversations, unread counts, delivery states, status.
import type {
  ChatMessage,
  ConversationSummary,
  MessageState,
  MessageStateChange,
  PathKind,
  PeerSummary,
  SearchHit,
  ServerState,
  StoredMessage,
} from '../../core'

export type Entry =
  | { kind: 'message'; id: string; from: string; text: string; ts: number; own: boolean }
  | { kind: 'notice'; text: string; ts: number; level: 'info' | 'error' }
  /** A search result: the message, where it was, and the [start, end) ranges of `text` that matched. */
  | { kind: 'hit'; id: string; peer: string; from: string; text: string; ts: number; matches: Array<[number, number]> }

export interface Contact {
  name: string
  online: boolean
  path?: PathKind
  unread: number
}

export interface Delivery {
  state: MessageState
  reason?: string
}

export interface Status {
  server?: ServerState
  /** The last problem, for the status bar; notices keep the full story. */
  lastError?: string
}

/** Entries kept per conversation; older ones scroll away for good. */
export const DEFAULT_LIMIT = 1000

export class ChatModel {
  /** The conversation on screen; undefined shows the home view. */
  current?: string
  readonly status: Status = {}
  private readonly contacts = new Map<string, Contact>()
  private readonly conversations = new Map<string, Entry[]>()
  /** The home view's lines: help, command output while no conversation is open. */
  private readonly home: Entry[] = []
  /** Delivery states by message id; a state may arrive before `send` has returned the message. */
  private readonly deliveries = new Map<string, Delivery>()
  private readonly listeners: Array<() => void> = []
  /** Called when the user has seen a conversation (opened it, or a message came while it was open): history marks it read. */
  onRead?: (peer: string) => void
  /** Conversations whose oldest stored message is on screen: PgUp at the top has nothing more to load. */
  private readonly historyComplete = new Set<string>()

  constructor(
    public me: string,
    private readonly limit = DEFAULT_LIMIT,
    private readonly now = () => Date.now(),
  ) {}

  /** Calls `listener` after every change, so the view can redraw. */
  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  private changed(): void {
    for (const listener of this.listeners) listener()
  }

  /** Contacts sorted by name; Tab and Alt+1..9 follow this order. */
  contactList(): Contact[] {
    return [...this.contacts.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  contact(name: string): Contact | undefined {
    return this.contacts.get(name)
  }

  /** Merges a fresh `chat.peers()` answer: listed peers get their state, others are offline. */
  updatePeers(peers: PeerSummary[]): void {
    const listed = new Set<string>()
    for (const peer of peers) {
      if (peer.name === this.me) continue
      listed.add(peer.name)
      const contact = this.ensureContact(peer.name)
      contact.online = peer.online
      contact.path = peer.path
    }
    for (const contact of this.contacts.values()) {
      if (!listed.has(contact.name)) {
        contact.online = false
        contact.path = undefined
      }
    }
    this.changed()
  }

  /** A peer event changed what we know of one contact. */
  updatePeer(name: string, patch: Partial<Pick<Contact, 'online' | 'path'>>): void {
    if (name === this.me) return
    Object.assign(this.ensureContact(name), patch)
    this.changed()
  }

  private ensureContact(name: string): Contact {
    let contact = this.contacts.get(name)
    if (!contact) {
      contact = { name, online: false, unread: 0 }
      this.contacts.set(name, contact)
    }
    return contact
  }

  /** Shows the conversation with `name`, creating it; its unread count drops to zero. */
  open(name: string): void {
    this.ensureContact(name).unread = 0
    this.onRead?.(name)
    if (!this.conversations.has(name)) this.conversations.set(name, [])
    this.current = name
    this.changed()
  }

  /** Tab / Shift+Tab: the next or previous contact, wrapping around. */
  cycle(step: 1 | -1): void {
    const list = this.contactList()
    if (!list.length) return
    const at = list.findIndex((c) => c.name === this.current)
    const next = at < 0 ? (step > 0 ? 0 : list.length - 1) : (at + step + list.length) % list.length
    this.open(list[next].name)
  }

  /** Alt+N: the Nth contact (1-based), if there is one. */
  select(position: number): void {
    const contact = this.contactList()[position - 1]
    if (contact) this.open(contact.name)
  }

  /** The entries of a conversation; undefined gives the home view's. */
  entries(name: string | undefined): readonly Entry[] {
    return name === undefined ? this.home : (this.conversations.get(name) ?? [])
  }

  addIncoming(message: ChatMessage): void {
    const contact = this.ensureContact(message.from)
    contact.online = true
    if (message.from !== this.current) contact.unread++
    else this.onRead?.(message.from)
    this.push(message.from, {
      kind: 'message',
      id: message.id,
      from: message.from,
      text: message.text,
      ts: message.ts,
      own: false,
    })
  }

  addOwn(message: ChatMessage): void {
    this.ensureContact(message.to)
    this.push(message.to, {
      kind: 'message',
      id: message.id,
      from: message.from,
      text: message.text,
      ts: message.ts,
      own: true,
    })
  }

  /** An informational or error line in `conversation` if it is open, else in the one on screen (or home). */
  notice(text: string, level: 'info' | 'error' = 'info', conversation?: string): void {
    const entry: Entry = { kind: 'notice', text, ts: this.now(), level }
    const target = conversation !== undefined && this.conversations.has(conversation) ? conversation : this.current
    if (target === undefined) this.pushHome(entry)
    else this.push(target, entry)
  }

  /** Something went wrong that is not the user's typing: it also becomes the status bar's last error. */
  problem(text: string, conversation?: string): void {
    this.status.lastError = text
    this.notice(text, 'error', conversation)
  }

  /** Conversations kept in history, after a restart: contacts with their unread counts survive it. */
  restoreConversations(conversations: ConversationSummary[]): void {
    for (const { peer, unread } of conversations) {
      if (peer === this.me) continue
      this.ensureContact(peer).unread = peer === this.current ? 0 : unread
    }
    this.changed()
  }

  /**
   * Stored messages older than those shown, oldest first, go on top of the conversation; `complete` says there are
   * no older ones. Not cut to the limit: the user scrolled back to read them.
   */
  prependHistory(peer: string, messages: StoredMessage[], complete: boolean): void {
    const list = this.conversations.get(peer) ?? []
    this.conversations.set(peer, list)
    const shown = new Set(list.flatMap((e) => (e.kind === 'message' ? [e.id] : [])))
    const older: Entry[] = []
    for (const m of messages) {
      if (shown.has(m.id)) continue
      older.push({ kind: 'message', id: m.id, from: m.from, text: m.text, ts: m.ts, own: m.out })
      if (m.out && m.state && !this.deliveries.has(m.id)) this.deliveries.set(m.id, { state: m.state })
    }
    list.unshift(...older)
    if (complete) this.historyComplete.add(peer)
    this.changed()
  }

  /** The id of the oldest message shown in a conversation, to ask history for the page before it. */
  oldestMessage(peer: string): string | undefined {
    return this.conversations.get(peer)?.find((e) => e.kind === 'message')?.id
  }

  /** True when older messages of the conversation may still be in history. */
  mayHaveOlder(peer: string): boolean {
    return !this.historyComplete.has(peer)
  }

  /** Search results in the view on screen, each message with its matched words highlighted. */
  showHits(query: string, hits: SearchHit[]): void {
    this.notice(hits.length ? `${hits.length} message(s) contain ${query}:` : `no message contains ${query}`)
    const target = this.current
    for (const { message: m, matches } of hits) {
      const entry: Entry = { kind: 'hit', id: m.id, peer: m.peer, from: m.from, text: m.text, ts: m.storedAt, matches }
      if (target === undefined) this.pushHome(entry)
      else this.push(target, entry)
    }
  }

  hasConversation(name: string): boolean {
    return this.conversations.has(name)
  }

  private pushHome(entry: Entry): void {
    this.home.push(entry)
    if (this.home.length > this.limit) this.home.shift()
    this.changed()
  }

  private push(name: string, entry: Entry): void {
    const list = this.conversations.get(name) ?? []
    this.conversations.set(name, list)
    list.push(entry)
    while (list.length > this.limit) {
      const gone = list.shift()
      if (gone?.kind === 'message') this.deliveries.delete(gone.id)
    }
    this.changed()
  }

  setDelivery(change: MessageStateChange): void {
    this.deliveries.set(change.id, { state: change.state, reason: change.reason })
    if (change.state === 'failed')
      this.status.lastError = `message to ${change.to} failed: ${change.reason ?? 'unknown reason'}`
    this.changed()
  }

  delivery(id: string): Delivery | undefined {
    return this.deliveries.get(id)
  }

  /** /clear: empties the view of a conversation (or home). */
  clear(name = this.current): void {
    const list = name === undefined ? this.home : this.conversations.get(name)
    list?.splice(0)
    this.changed()
  }

  setServer(state: ServerState): void {
    this.status.server = state
    this.changed()
  }

  /** Conversations other than the current one with unread messages, for narrow screens without the list. */
  unreadElsewhere(): Contact[] {
    return this.contactList().filter((c) => c.unread > 0 && c.name !== this.current)
  }
}
