// The types that plugins, frontends and the core share. This file and hooks.ts are the public API.
import type { Frame } from '../protocol/frames'
import type { SearchHit } from './services'

/** A UDP (or other datagram) address. */
export interface Endpoint {
  address: string
  port: number
}

/** How a peer is reached: straight through the NATs, or forwarded by the rendezvous server. */
export type PathKind = 'direct' | 'relay'

/** A datagram as a transport received it: raw bytes, before anything is parsed. */
export interface Datagram {
  bytes: Buffer
  from: Endpoint
  transport: Transport
}

/** A datagram as the `receive` hook sees it: its udsu frame parsed once by the core, undefined if it is not one. */
export interface ReceivedDatagram extends Datagram {
  frame: Frame | undefined
}

/** Sends and receives datagrams; the `udp` plugin provides one. */
export interface Transport {
  readonly name: string
  /** The local endpoint the socket is bound to. */
  local(): Endpoint
  send(bytes: Uint8Array, to: Endpoint): Promise<void>
}

/** A chat message as a user sees it. `id` is unique per sender; `ts` is the sender's clock in ms. */
export interface ChatMessage {
  id: string
  from: string
  to: string
  text: string
  ts: number
}

/**
 * A payload on its way to or from one peer, between the message layer and the wire.
 * Outgoing, `sealed` must be true before it leaves: the core never sends plaintext.
 * Incoming, `peer` is set only once a plugin has authenticated the sender.
 */
export interface PeerPacket {
  peer: string
  bytes: Buffer
  sealed: boolean
  /** Where an incoming packet came from (absent on outgoing ones). */
  from?: Endpoint
  transport?: Transport
}

/** An incoming DATA frame before it is decrypted: its sender is not known yet. */
export interface SealedPacket {
  bytes: Buffer
  from: Endpoint
  transport: Transport
  /** Set by the decrypting plugin: who sent it (authenticated) and the plaintext. */
  opened?: { peer: string; bytes: Buffer }
}

/** What the client knows of another user. */
export interface PeerInfo {
  name: string
  /** PEM of the peer's RSA identity key, as the rendezvous server introduced it. */
  publicKey?: string
  fingerprint?: string
  online: boolean
  path?: PathKind
  /** The peer's running process as the server introduced it: a new one means it restarted (and lost its sessions). */
  instance?: string
}

export interface PeerSummary {
  name: string
  online: boolean
  path?: PathKind
}

/** Delivery state of one's own message, as frontends show it. */
export type MessageState = 'pending' | 'sent' | 'delivered' | 'failed'

export interface MessageStateChange {
  id: string
  to: string
  state: MessageState
  /** Why, when the state is `failed`. */
  reason?: string
}

/** What `ready` reports: who this client is. */
export interface Identity {
  name: string
  fingerprint: string
}

/** This client's user: the encryption plugin fills in the key during `init`; path plugins publish it. */
export interface LocalUser {
  name: string
  /** PEM of the RSA identity public key. */
  publicKey: string
  fingerprint: string
  /** Signs with the identity key (RSA-PSS-SHA256), e.g. to prove the key to the rendezvous server. */
  sign(data: Buffer): Buffer
}

/** The settings the user controls; a frontend may ask for them before start. */
export interface Settings {
  name: string
  /** `host:port` of the rendezvous server, or several separated by commas: the client fails over between them in order. */
  server: string
}

/** A slash command a plugin offers; `/help` is generated from these. */
export interface Command {
  name: string
  usage: string
  description: string
  aliases?: string[]
  run(args: string, ui: CommandOutput): Promise<void> | void
}

export interface CommandOutput {
  /** Prints an informational line in the current view. */
  info(text: string): void
  error(text: string): void
  /** The conversation the user is looking at, if any. */
  readonly current?: string
  /** Shows search results with their matches highlighted; a frontend without it gets them as info lines. */
  showHits?(query: string, hits: SearchHit[]): void
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
  child(scope: string): Logger
}

/** The two ends of the message pipeline, for plugins that carry envelopes in their own framing (reliable delivery). */
export interface Pipeline {
  /** Seals plaintext for a peer and puts it on a path (opening one if needed); throws with the reason when it cannot. */
  sendSealed(peer: string, plaintext: Buffer): Promise<void>
  /** Hands one whole envelope from an authenticated peer to routing and delivery; resolves once every `deliver` tap is done. */
  receiveEnvelope(peer: string, bytes: Buffer): Promise<void>
}

/** The face of the running client that frontends and plugins use. */
export interface Chat {
  readonly settings: Settings
  /** Known after `init`: this client's identity fingerprint. */
  readonly identity: Identity
  /** Accepts a message for delivery; it is `pending` until it leaves, then `sent`. */
  send(to: string, text: string): Promise<ChatMessage>
  /** Asks who is known and online. */
  peers(): Promise<PeerSummary[]>
  /** Opens a path to a peer ahead of the first message. */
  connect(peer: string): Promise<PathKind>
  /** The safety number for the conversation with a peer, if its key is known. */
  fingerprintOf(peer: string): string | undefined
  /** Stops the client cleanly: unregisters, saves state, closes sockets. */
  stop(): Promise<void>
}

/** The decoded content of a sealed packet: one JSON object with a `type` (`chat`, receipts, control). */
export type { Envelope } from '../protocol/envelope'

/** Where the client stands with its rendezvous server. */
export interface ServerState {
  online: boolean
  /** `host:port` of the server, as configured (with several, the whole comma-separated list). */
  server: string
  /** `host:port` of the server in use (or last tried, when offline): one of those configured. */
  current?: string
  /** Our public endpoint as the server sees it, once registered. */
  publicEndpoint?: Endpoint
  /** Why, when offline. */
  reason?: string
}

/** A problem to show the user; `source` names the plugin or part it came from. */
/** Something the user should know that is neither a problem nor a message, e.g. "generating a 3072-bit key…". */
export interface Notice {
  source: string
  message: string
}

export interface Problem {
  source: string
  message: string
  /** The peer it concerns, if any. */
  peer?: string
  /**
   * Set when a frontend acts on it: `key-changed`, the peer's key changed and `/trust PEER` accepts it;
   * `registration-refused`, the server refused our name (taken under another key) or key.
   */
  code?: 'key-changed' | 'registration-refused' | 'server-key-changed'
}
