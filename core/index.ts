// udsu's public API: what a plugin or frontend author imports from 'udsu'. Everything else in dist/ is internal and
// may change without notice; add a name here only when a plugin outside this repository needs it.

export { API_VERSION, definePlugin, Veto, Cancelled, isVeto, isCancelled } from './plugin'
export type { CoreServices, OptionsCheck, PluginDefinition } from './plugin'

export type { Hooks } from './hooks'
export type { ClientStats } from './client'
// A frontend maps events, not hooks: the observe-only hooks as one typed stream.
export { observeFrontendEvents } from './frontend'
export type { FrontendEvent } from './frontend'
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
  Notice,
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
export type { TransportRegistry } from './transports'
export type {
  ConversationSummary,
  EmbeddedAttempt,
  EmbeddedServerService,
  HistoryService,
  SearchHit,
  ServiceMap,
  ServiceRegistry,
  StoredMessage,
} from './services'

// Frames: a plugin that claims datagrams in `receive` tells them apart by kind; one with a kind of its own declares it
// in its definition (`frames`) and sends it with encodeFrame (or puts `frameHeader(kind)` before its body itself).
export {
  FIRST_PLUGIN_KIND,
  FrameKind,
  MAX_DATAGRAM_BYTES,
  decodeFrame,
  encodeFrame,
  frameHeader,
} from '../protocol/frames'
export type { Frame, FrameKindDeclaration } from '../protocol/frames'
export { DEFAULT_SERVER } from '../protocol/endpoints'

// Names, as the rendezvous server accepts them: a frontend checks what the user types against these.
export { NAME_HINT, NAME_PATTERN } from '../protocol/names'

// Files: a folder of private files (the profile is one; a frontend keeps its remembered settings in another), where a
// user's profile is by default, and the atomic 0600 write both use, for a plugin writing a file elsewhere (an export).
export { defaultProfileDir, Profile, writeFileAtomic } from './profile'

// A FIFO queue whose shift stays O(1) past V8's array limits, for a plugin that queues per peer.
export { Fifo } from './fifo'

// One IPv4 UDP socket as a Transport (bind, send, close), for a transport plugin over UDP.
export { UdpSocket } from './udp-socket'

// Checking options: udsu's combinators, or any Standard Schema (zod, valibot).
export { boolean, either, list, number, object, oneOf, optional, string, validate } from './schema'
export type { Check, Infer, ObjectOf } from './schema'
export type { StandardSchemaV1 } from './standard-schema'
