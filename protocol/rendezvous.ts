// The rendezvous protocol: JSON bodies of SERVER frames between clients and the server, and their checks.
import { createPublicKey } from 'node:crypto'
import { transcriptBytes, type Transcript } from './channel'
import { NAME_PATTERN } from './names'
import type { Endpoint } from '../core/types'
import { isEndpoint } from './endpoints'
import type { JsonMessage } from './frames'

/** Longest public key PEM accepted (a 4096-bit key is about 800 characters). */
export const MAX_KEY_CHARS = 1000
/** At most this many local endpoints per registration. */
export const MAX_LOCAL_ENDPOINTS = 8
/** Padding of a `mapping` request, so it is never shorter than the `mapped` answer (no amplification). */
export const MAPPING_PAD = 'x'.repeat(64)
/** Padding of a `hello`, so it is never shorter than the `cookie` answer with where the server sees us (no amplification). */
export const HELLO_PAD = 'x'.repeat(160)
/** Padding of a `ping`, so a server that forgot us may answer `not_registered` (no amplification). */
export const PING_PAD = 'x'.repeat(64)
/** Names per `peers` reply, so that a reply fits a datagram. */
export const NAMES_PER_REPLY = 40

/** How a client's NAT maps: `eim` the same public port for every destination, `symmetric` a new one per destination. */
export type NatType = 'eim' | 'symmetric' | 'unknown'
const NAT_TYPES: readonly string[] = ['eim', 'symmetric', 'unknown']

export interface PeerIntro {
  name: string
  key: string
  public: Endpoint
  local: Endpoint[]
  /** The peer's NAT as it detected it (absent from servers that predate detection: treat as `unknown`). */
  nat?: NatType
  /** The peer's process, new at each start: another instance than before means it restarted and lost its sessions. */
  instance?: string
}

/** Client → server. `rid` is echoed in the reply so the client can match it. */
export type ClientMessage =
  /** The first step of a registration: asks for a cookie that proves we receive at our address. Padded with HELLO_PAD. */
  | { t: 'hello'; rid: string; pad?: string }
  /** The second, in clear: name and key (the cookie's and the challenge's inputs), with the cookie and an ephemeral X25519
   * key for the channel; answered by a challenge to sign. Nothing private: the rest goes sealed in `prove`. */
  | {
      t: 'register'
      rid: string
      cookie: string
      name: string
      key: string
      eph: string
    }
  /** The third, only sealed under the channel the challenge set up (client counter from 0): the transcript signed with the
   * identity key (RSA-PSS-SHA256, base64, see `registrationProof`), and what an eavesdropper must not learn: the LAN
   * endpoints, the NAT type and the instance. */
  | { t: 'prove'; rid: string; sig: string; local: Endpoint[]; nat?: NatType; instance?: string }
  /** Sent to the server's second port only: asks which public endpoint that port sees (NAT detection). `pad` makes the
   * request at least as long as the answer (MAPPING_PAD characters), which the server requires. */
  | { t: 'mapping'; rid: string; pad?: string }
  /** Asks the server to relay frames to and from `to`; frames flow once both peers asked. */
  | { t: 'relay'; rid: string; to: string }
  /** Padded (PING_PAD) so that a server that forgot us may answer `not_registered` without amplifying. */
  | { t: 'ping'; rid: string; pad?: string }
  /** One page of the names online: those after `after`, containing `query` (compared folded, see names.ts). */
  | { t: 'list'; rid: string; query?: string; after?: string }
  | { t: 'connect'; rid: string; to: string }
  | { t: 'bye' }
  /** Gives our name up at once, instead of after the server's long absence (see server/names.ts). */
  | { t: 'release'; rid: string }

/** Server → client. */
export type ServerMessage =
  /** With where the server sees us and its second port when the `hello` was long enough to carry them back: the client
   *  learns its NAT type before it registers, so one registration carries it. */
  | { t: 'cookie'; rid: string; cookie: string; public?: Endpoint; altPort?: number }
  /** The server's ephemeral key and its long-term key, with its Ed25519 signature over the transcript (see channel.ts). */
  | { t: 'challenge'; rid: string; nonce: string; eph: string; skey: string; ssig: string }
  | { t: 'registered'; rid: string; name: string; public: Endpoint; ttlMs: number; altPort?: number; relay?: boolean }
  /** From the second port: the endpoint it saw; a port other than `registered.public`'s means a symmetric NAT. */
  | { t: 'mapped'; rid: string; public: Endpoint }
  /** Relay state with `peer`: the answer to our `relay` (with rid), or unsolicited when the peer asked or both now have. */
  | { t: 'relay'; rid?: string; peer: string; ready: boolean }
  | { t: 'pong'; rid: string; public: Endpoint }
  /** A page of `list`: `more` when names follow the last one (ask again with `after` it). */
  | { t: 'peers'; rid: string; peers: string[]; more: boolean }
  | { t: 'intro'; rid?: string; peer: PeerIntro; token: string }
  /** The peer said bye to the server: told to those it was relayed with, since a peer's own bye does not cross the relay. */
  | { t: 'left'; rid?: string; peer: string }
  /** The server is stopping (SIGTERM): register again at once, and keep trying until it (or another) answers. */
  | { t: 'closing'; rid?: string }
  /** The answer to `release`: the name is free for any key from now. */
  | { t: 'released'; rid: string; name: string }
  | { t: 'error'; rid?: string; code: ErrorCode; message: string }

export type ErrorCode =
  | 'bad_request'
  | 'bad_cookie'
  | 'bad_proof'
  | 'name_taken'
  | 'full'
  | 'not_registered'
  | 'unknown_peer'
  | 'bad_key'
  | 'relay_disabled'
  | 'slow_down'
  | 'over_quota'

const isB64u = (v: unknown, min: number, max: number): v is string =>
  typeof v === 'string' && v.length >= min && v.length <= max && /^[A-Za-z0-9_-]+$/.test(v)
const isEph = (v: unknown): v is string => isB64u(v, 43, 43)
const isRid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{1,32}$/.test(v)
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536
const isName = (v: unknown): v is string => typeof v === 'string' && NAME_PATTERN.test(v)
const isNat = (v: unknown): v is NatType => typeof v === 'string' && NAT_TYPES.includes(v)
const isInstance = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{16}$/.test(v)
const isEndpointList = (v: unknown): v is Endpoint[] =>
  Array.isArray(v) && v.length <= MAX_LOCAL_ENDPOINTS && v.every(isEndpoint)

/** What the client signs to prove it holds the private key of the name it registers, for this server and this channel. */
export function registrationProof(transcript: Transcript): Buffer {
  return Buffer.concat([Buffer.from('udsu-register-v2\n', 'utf8'), transcriptBytes(transcript)])
}

/** Checks a client message's shape; undefined if it is not one we accept. */
export function parseClientMessage(m: JsonMessage): ClientMessage | undefined {
  switch (m.t) {
    case 'hello':
      return isRid(m.rid) ? { t: 'hello', rid: m.rid } : undefined
    case 'register':
      return isRid(m.rid) &&
        typeof m.cookie === 'string' &&
        m.cookie.length <= 64 &&
        isName(m.name) &&
        typeof m.key === 'string' &&
        m.key.length <= MAX_KEY_CHARS &&
        isEph(m.eph)
        ? { t: 'register', rid: m.rid, cookie: m.cookie, name: m.name, key: m.key, eph: m.eph }
        : undefined
    case 'prove':
      return isRid(m.rid) &&
        typeof m.sig === 'string' &&
        m.sig.length <= 1400 &&
        /^[A-Za-z0-9+/=]+$/.test(m.sig) &&
        isEndpointList(m.local) &&
        (m.nat === undefined || isNat(m.nat)) &&
        (m.instance === undefined || isInstance(m.instance))
        ? {
            t: 'prove',
            rid: m.rid,
            sig: m.sig,
            local: m.local,
            nat: m.nat ?? 'unknown',
            ...(m.instance ? { instance: m.instance } : {}),
          }
        : undefined
    case 'mapping':
      return isRid(m.rid) ? { t: 'mapping', rid: m.rid } : undefined
    case 'relay':
      return isRid(m.rid) && isName(m.to) ? { t: 'relay', rid: m.rid, to: m.to } : undefined
    case 'ping':
    case 'release':
      return isRid(m.rid) ? { t: m.t, rid: m.rid } : undefined
    case 'list':
      return isRid(m.rid) &&
        (m.query === undefined || (typeof m.query === 'string' && m.query.length <= 64)) &&
        (m.after === undefined || isName(m.after))
        ? { t: 'list', rid: m.rid, ...(m.query ? { query: m.query } : {}), ...(m.after ? { after: m.after } : {}) }
        : undefined
    case 'connect':
      return isRid(m.rid) && isName(m.to) ? { t: 'connect', rid: m.rid, to: m.to } : undefined
    case 'bye':
      return { t: 'bye' }
    default:
      return undefined
  }
}

/** Checks a server message's shape on the client side; undefined if malformed. */
export function parseServerMessage(m: JsonMessage): ServerMessage | undefined {
  const rid = m.rid === undefined || isRid(m.rid)
  if (!rid) return undefined
  switch (m.t) {
    case 'cookie':
      return typeof m.cookie === 'string' &&
        m.cookie.length <= 64 &&
        (m.public === undefined || isEndpoint(m.public)) &&
        (m.altPort === undefined || isPort(m.altPort))
        ? (m as ServerMessage)
        : undefined
    case 'challenge':
      return typeof m.nonce === 'string' &&
        /^[0-9a-f]{32}$/.test(m.nonce) &&
        isEph(m.eph) &&
        isB64u(m.skey, 16, 128) &&
        isB64u(m.ssig, 86, 86)
        ? (m as ServerMessage)
        : undefined
    case 'registered':
      return isName(m.name) &&
        isEndpoint(m.public) &&
        typeof m.ttlMs === 'number' &&
        (m.altPort === undefined || isPort(m.altPort))
        ? (m as ServerMessage)
        : undefined
    case 'pong':
    case 'mapped':
      return isEndpoint(m.public) ? (m as ServerMessage) : undefined
    case 'relay':
      return isName(m.peer) && typeof m.ready === 'boolean' ? (m as ServerMessage) : undefined
    case 'left':
      return isName(m.peer) ? (m as ServerMessage) : undefined
    case 'released':
      return isName(m.name) ? (m as ServerMessage) : undefined
    case 'closing':
      return { t: 'closing' }
    case 'peers':
      return Array.isArray(m.peers) && m.peers.length <= NAMES_PER_REPLY && m.peers.every(isName)
        ? (m as ServerMessage)
        : undefined
    case 'intro': {
      const peer = m.peer as PeerIntro | undefined
      const ok =
        typeof m.token === 'string' &&
        /^[0-9a-f]{32}$/.test(m.token) &&
        typeof peer === 'object' &&
        peer !== null &&
        isName(peer.name) &&
        typeof peer.key === 'string' &&
        peer.key.length <= MAX_KEY_CHARS &&
        isEndpoint(peer.public) &&
        isEndpointList(peer.local) &&
        (peer.nat === undefined || isNat(peer.nat)) &&
        (peer.instance === undefined || isInstance(peer.instance))
      return ok ? (m as ServerMessage) : undefined
    }
    case 'error':
      return typeof m.code === 'string' && typeof m.message === 'string' ? (m as ServerMessage) : undefined
    default:
      return undefined
  }
}

/** An RSA public key of at least 2048 bits with exponent 65537, or the reason it is not. */
export function checkRsaPublicKey(pem: string): string | undefined {
  try {
    const key = createPublicKey(pem)
    const details = key.asymmetricKeyDetails
    if (key.asymmetricKeyType !== 'rsa') return 'the key is not an RSA key'
    if (!details?.modulusLength || details.modulusLength < 2048 || details.modulusLength > 8192)
      return 'the key must have 2048 to 8192 bits'
    if (details.publicExponent !== 65537n) return 'the key must have public exponent 65537'
    return undefined
  } catch {
    return 'the key is not a PEM public key'
  }
}
