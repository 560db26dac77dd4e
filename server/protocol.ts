// The rendezvous protocol: JSON bodies of SERVER frames between clients and the server, and their checks.
import { createPublicKey } from 'node:crypto'
import { NAME_PATTERN } from '../core/config'
import type { Endpoint } from '../core/types'
import { isEndpoint, type JsonMessage } from '../core/wire'

/** Longest public key PEM accepted (a 4096-bit key is about 800 characters). */
export const MAX_KEY_CHARS = 1000
/** At most this many local endpoints per registration. */
export const MAX_LOCAL_ENDPOINTS = 8
/** Names per `peers` reply, so that a reply fits a datagram. */
export const NAMES_PER_REPLY = 40

export interface PeerIntro {
  name: string
  key: string
  public: Endpoint
  local: Endpoint[]
}

/** Client → server. `rid` is echoed in the reply so the client can match it. */
export type ClientMessage =
  | { t: 'register'; rid: string; name: string; key: string; local: Endpoint[] }
  | { t: 'ping'; rid: string }
  | { t: 'list'; rid: string }
  | { t: 'connect'; rid: string; to: string }
  | { t: 'bye' }

/** Server → client. */
export type ServerMessage =
  | { t: 'registered'; rid: string; name: string; public: Endpoint; ttlMs: number }
  | { t: 'pong'; rid: string; public: Endpoint }
  | { t: 'peers'; rid: string; peers: string[]; more: boolean }
  | { t: 'intro'; rid?: string; peer: PeerIntro; token: string }
  | { t: 'error'; rid?: string; code: ErrorCode; message: string }

export type ErrorCode = 'bad_request' | 'name_taken' | 'full' | 'not_registered' | 'unknown_peer' | 'bad_key'

const isRid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{1,32}$/.test(v)
const isName = (v: unknown): v is string => typeof v === 'string' && NAME_PATTERN.test(v)
const isEndpointList = (v: unknown): v is Endpoint[] => Array.isArray(v) && v.length <= MAX_LOCAL_ENDPOINTS && v.every(isEndpoint)

/** Checks a client message's shape; undefined if it is not one we accept. */
export function parseClientMessage(m: JsonMessage): ClientMessage | undefined {
  switch (m.t) {
    case 'register':
      return isRid(m.rid) && isName(m.name) && typeof m.key === 'string' && m.key.length <= MAX_KEY_CHARS && isEndpointList(m.local)
        ? { t: 'register', rid: m.rid, name: m.name, key: m.key, local: m.local }
        : undefined
    case 'ping':
    case 'list':
      return isRid(m.rid) ? { t: m.t, rid: m.rid } : undefined
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
    case 'registered':
      return isName(m.name) && isEndpoint(m.public) && typeof m.ttlMs === 'number' ? (m as ServerMessage) : undefined
    case 'pong':
      return isEndpoint(m.public) ? (m as ServerMessage) : undefined
    case 'peers':
      return Array.isArray(m.peers) && m.peers.length <= NAMES_PER_REPLY && m.peers.every(isName) ? (m as ServerMessage) : undefined
    case 'intro': {
      const peer = m.peer as PeerIntro | undefined
      const ok =
        typeof m.token === 'string' && /^[0-9a-f]{32}$/.test(m.token) && typeof peer === 'object' && peer !== null &&
        isName(peer.name) && typeof peer.key === 'string' && peer.key.length <= MAX_KEY_CHARS &&
        isEndpoint(peer.public) && isEndpointList(peer.local)
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
    if (!details?.modulusLength || details.modulusLength < 2048 || details.modulusLength > 8192) return 'the key must have 2048 to 8192 bits'
    if (details.publicExponent !== 65537n) return 'the key must have public exponent 65537'
    return undefined
  } catch {
    return 'the key is not a PEM public key'
  }
}
