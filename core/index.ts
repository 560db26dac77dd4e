// udsu's public API: what a plugin or frontend author imports from 'udsu'. Everything else in dist/ is internal and
// may change without notice; add a name here only when a plugin outside this repository needs it.

export { API_VERSION, definePlugin, Veto, Cancelled, isVeto, isCancelled } from './plugin'
export type { CoreServices, OptionsCheck, PluginDefinition } from './plugin'

export type { Hooks } from './hooks'
export type { ClientStats } from './client'
export type {
  Chat,
  ChatMessage,
  Command,
  CommandOutput,
  Datagram,
  Endpoint,
  Envelope,
  Identity,
  LocalUser,
  Logger,
  MessageState,
  MessageStateChange,
  PathKind,
  PeerInfo,
  PeerPacket,
  PeerSummary,
  Pipeline,
  Problem,
  ReceivedDatagram,
  SealedPacket,
  ServerState,
  Settings,
  Transport,
} from './types'

// The classes behind core services: types only, since the client builds them and hands them to plugins.
export type { CommandRegistry } from './commands'
export type { PeerDirectory } from './peers'
export type { Profile } from './profile'
export type { TransportRegistry } from './transports'
export type { ConversationSummary, EmbeddedAttempt, EmbeddedServerService, HistoryService, SearchHit, ServiceMap, ServiceRegistry, StoredMessage } from './services'

// Frames: a plugin that claims datagrams in `receive` tells them apart by kind; one with a kind of its own declares it
// in its definition (`frames`) and sends it with encodeFrame.
export { FIRST_PLUGIN_KIND, FrameKind, MAX_DATAGRAM_BYTES, decodeFrame, encodeFrame } from '../protocol/frames'
export type { Frame, FrameKindDeclaration } from '../protocol/frames'

// Checking options: udsu's combinators, or any Standard Schema (zod, valibot).
export { boolean, either, list, number, object, oneOf, optional, string, validate } from './schema'
export type { Check, Infer, ObjectOf } from './schema'
export type { StandardSchemaV1 } from './standard-schema'
