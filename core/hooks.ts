// Every extension point of the client, in one place. Each line says when the hook runs and what a tap may change.
import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncBailHook, SyncHook } from 'tapable'
import type {
  ChatMessage,
  ReceivedDatagram,
  Envelope,
  Identity,
  MessageStateChange,
  PathKind,
  PeerInfo,
  PeerPacket,
  PeerSummary,
  Notice,
  Problem,
  SealedPacket,
  ServerState,
  Settings,
  Transport,
} from './types'

export function createHooks() {
  return Object.freeze({
    // ── lifecycle ──
    /** Before init, once: a frontend may ask the user for name and server and return changed settings. */
    configure: new AsyncSeriesWaterfallHook<[Settings]>(['settings']),
    /** Settings are final: plugins load keys and state from the profile. Nothing touches the network yet. */
    init: new AsyncSeriesHook<[]>([]),
    /** After init: transports open sockets (stage -100, before the rest), path plugins register with the rendezvous server. */
    start: new AsyncSeriesHook<[]>([]),
    /** Once, when the client is registered and usable; frontends show who we are. Observe only. */
    ready: new SyncHook<[Identity]>(['identity']),
    /** When the client stops: plugins unregister, flush state and close what they opened (transports tap with stage 100, to close last). */
    stop: new AsyncSeriesHook<[]>([]),

    // ── transports and paths ──
    /** A transport was registered; path plugins may start using it. Observe only. */
    transport: new SyncHook<[Transport]>(['transport']),
    /** The rendezvous server became reachable or was lost. Observe only. */
    server: new SyncHook<[ServerState]>(['state']),
    /** The core needs a path to a peer; the first plugin that opens one returns its kind, or undefined to pass. */
    connect: new AsyncSeriesBailHook<[string], PathKind | undefined>(['peer']),
    /** A frontend asks who is around; taps add or update entries of the list and return it. */
    listPeers: new AsyncSeriesWaterfallHook<[PeerSummary[]]>(['peers']),

    // ── peer events ──
    /** The server introduced or listed a peer (its key, whether it is online). Observe only. */
    peerDiscovered: new SyncHook<[PeerInfo]>(['peer']),
    /** A path to a peer opened or changed kind. Observe only. */
    peerConnected: new SyncHook<[string, PathKind]>(['peer', 'path']),
    /** A path to a peer was lost (timeout, peer left); the reason is for people. Observe only. */
    peerLost: new SyncHook<[string, string]>(['peer', 'reason']),

    // ── outgoing messages ──
    /** A message the user wrote, before it is encoded; a tap may return a rewritten message, or throw Veto to stop it (any other failure stops it too). */
    compose: new AsyncSeriesWaterfallHook<[ChatMessage]>(['message']),
    /** Fired by `chat.send` right after compose, before `pending`: the message as it will go out; history stores it. Observe only. */
    accepted: new SyncHook<[ChatMessage]>(['message']),
    /** An envelope leaving for a peer; a delivery plugin that takes charge (queue, fragment, retransmit) returns true, else the core sends it as one datagram. */
    transmit: new AsyncSeriesBailHook<[string, Envelope], true | undefined>(['peer', 'envelope']),
    /** Plaintext on its way to one peer, from `pipeline.sendSealed`: byte transforms tap at a stage below 0 and may return other bytes, then the encryption tap seals it and sets `sealed`; a tap that throws or vetoes stops the packet (fail closed). */
    encode: new AsyncSeriesWaterfallHook<[PeerPacket]>(['packet']),
    /** A sealed packet; the first path plugin that delivers it returns true (direct before relay by stage). */
    send: new AsyncSeriesBailHook<[PeerPacket], true | undefined>(['packet']),
    /** One's own message changed delivery state (pending, sent, delivered, failed). Observe only. */
    messageState: new SyncHook<[MessageStateChange]>(['change']),

    // ── incoming messages ──
    /** A datagram from a transport, its frame parsed; a plugin that owns the frame's kind claims it by returning true. */
    receive: new SyncBailHook<[ReceivedDatagram], true | undefined>(['datagram']),
    /** An unclaimed DATA frame; the tap that can authenticate and decrypt it returns the opened packet. */
    decrypt: new AsyncSeriesBailHook<[SealedPacket], PeerPacket | undefined>(['packet']),
    /** An opened packet from an authenticated peer, fired by the core after `decrypt`: byte transforms undo what they did in `encode` by returning other bytes (tap at the negated stage, so several are undone in reverse order) (peer and sender stay); a tap that throws or vetoes drops the packet (fail closed). */
    decode: new AsyncSeriesWaterfallHook<[PeerPacket]>(['packet']),
    /** An opened and decoded packet from an authenticated peer; a delivery plugin that owns its framing takes it (and passes whole envelopes to `pipeline.receiveEnvelope`), else the core reads it as one envelope. */
    unwrap: new AsyncSeriesBailHook<[PeerPacket], true | undefined>(['packet']),
    /** A decoded envelope from an authenticated peer; a tap that handles its type returns true (chat goes on to deliver). */
    route: new AsyncSeriesBailHook<[Envelope, PeerPacket], true | undefined>(['envelope', 'packet']),
    /** A chat message from an authenticated peer, fired by the core before `deliver`: a tap may return it with another text (id, from, to and ts stay) or throw Veto to drop it unseen (still acknowledged); a failed tap is reported and the message passes. */
    incoming: new AsyncSeriesWaterfallHook<[ChatMessage]>(['message']),
    /** A chat message for the user, fired by the core once per received envelope: history stores it (stage -100), then frontends show it. May not change it; a tap returns true to stop it for the taps after it (history: already stored, so shown before). */
    deliver: new AsyncSeriesBailHook<[ChatMessage], true | void>(['message']),

    /** A frontend asks for the safety number of a conversation; the encryption plugin answers. */
    safetyNumber: new SyncBailHook<[string], string | undefined>(['peer']),

    // ── problems ──
    /** Something went wrong that the user should see (a plugin failed, a peer's key changed). Observe only. */
    problem: new SyncHook<[Problem]>(['problem']),
    /** Called by a plugin with news for the user that is not a problem (a key being generated, during init); frontends show it. Observe only. */
    notice: new SyncHook<[Notice]>(['notice']),
  })
}

export type Hooks = ReturnType<typeof createHooks>
