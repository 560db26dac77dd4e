// The RELAY frame codec, shared by the server (forwarding) and the client's hole-punch plugin (wrapping, unwrapping).
import { decodeFrame, encodeFrame, FrameKind, HEADER_BYTES, MAX_DATAGRAM_BYTES } from './frames'
import { CHANNEL_OVERHEAD } from './channel'
import { MAX_NAME_BYTES } from './names'

/** Longest name in a RELAY header, in UTF-8 bytes: a name's limit, as everywhere (protocol/names.ts). */
export const MAX_RELAY_NAME_BYTES = MAX_NAME_BYTES
/** The only frame kinds the relay carries: both are sealed end to end, so the server cannot read them. */
const RELAYABLE = new Set<number>([FrameKind.Handshake, FrameKind.Data])

/**
 * RELAY frame body: `u8 nameLength · name (UTF-8) · inner frame`. The inner frame is a whole udsu frame of kind
 * HANDSHAKE or DATA. Client → server the name is the recipient; server → client it is the sender, as the server knows it
 * from the registered source endpoint, so a sender cannot pose as another peer.
 */
export function encodeRelay(name: string, frame: Buffer): Buffer {
  const nameBytes = Buffer.from(name, 'utf8')
  if (nameBytes.length === 0 || nameBytes.length > MAX_RELAY_NAME_BYTES)
    throw new Error(`relay name of ${nameBytes.length} bytes`)
  return encodeFrame(FrameKind.Relay, Buffer.concat([Buffer.of(nameBytes.length), nameBytes, frame]))
}

/** Parses a RELAY body; undefined unless it names someone and carries a HANDSHAKE or DATA frame. */
export function decodeRelay(body: Buffer): { name: string; frame: Buffer } | undefined {
  const length = body[0]
  if (body.length < 1 || !length || length > MAX_RELAY_NAME_BYTES || body.length < 1 + length + HEADER_BYTES)
    return undefined
  const frame = body.subarray(1 + length)
  const inner = decodeFrame(frame)
  if (!inner || !RELAYABLE.has(inner.kind)) return undefined
  return { name: body.subarray(1, 1 + length).toString('utf8'), frame }
}

/** Room left for the inner frame once the RELAY header and a name are added, and the RELAY frame is sealed into the channel. */
export const relayRoom = (name: string): number =>
  MAX_DATAGRAM_BYTES - CHANNEL_OVERHEAD - HEADER_BYTES - 1 - Buffer.byteLength(name)
