// The wire format of reliable delivery (plugins/reliable): DATA, ACK and BUNDLE frames, carried as the plaintext of
// sealed DATA datagrams; encoded by hand and decoded with every length checked.
// The byte layout is documented in plugins/reliable/README.md and docs/PROTOCOL.md; keep them in step.

export const FRAME_DATA = 1
export const FRAME_ACK = 2
/** Several DATA and ACK frames in one datagram, so small messages share one seal and one send. */
export const FRAME_BUNDLE = 3
/** DATA flag: an ack block follows the fragment fields. */
export const FLAG_HAS_ACK = 0x01

/** kind u8, flags u8, epoch u32, peerEpoch u32. */
export const HEADER_BYTES = 10
/** cum u32, limit u32, ackDelay u16, range count u8; then 4 bytes per range. */
export const ACK_BLOCK_BYTES = 11
export const SACK_RANGE_BYTES = 4
/** seq u32, fragIndex u16, fragCount u16. */
export const DATA_FIELDS_BYTES = 8
/** The largest frame (the link's default maxFrameBytes): sealed and framed, a datagram stays within 1200 bytes. */
export const MAX_FRAME_BYTES = 1100
/** A bundle is never larger than one full frame, so datagrams grow no larger. */
export const MAX_BUNDLE_BYTES = MAX_FRAME_BYTES
/** kind u8, then per frame a u16 length. */
const BUNDLE_HEADER_BYTES = 1
const BUNDLE_LENGTH_BYTES = 2
/** At most this many SACK ranges in one ack block. */
export const MAX_SACK_RANGES = 32
/** Message ids travel as UTF-8 behind a u8 length. */
export const MAX_ID_BYTES = 255

export type FrameErrorCode =
  /** The frame ends before a field it announces. */
  | 'truncated'
  /** Bytes remain after the last field (ACK frames have no payload). */
  | 'trailing'
  /** Unknown frame kind or flag bit. */
  | 'unknown-kind'
  /** A field holds a value the protocol forbids (zero epoch, fragIndex >= fragCount, bad UTF-8, ...). */
  | 'bad-field'
  /** The frame is larger than the receiver accepts. */
  | 'too-large'
  /** Well-formed, but contradicts what the peer sent before (fragments of one message disagree). */
  | 'protocol'

/** Why a frame was rejected. Thrown only for bad input; the link's state is unchanged when it is. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(`reliable frame rejected (${code}): ${message}`)
    this.name = 'FrameError'
  }
}

/** A run of received sequence numbers [start, start + length) above the cumulative ack. */
export interface SackRange {
  start: number
  length: number
}

/** What a receiver tells a sender about the sender's stream. */
export interface AckBlock {
  /** Every seq below `cum` was received and its message delivered. */
  cum: number
  /** The receiver accepts seqs below `limit` (flow-control window). */
  limit: number
  /** How long the receiver held this ack since the newest frame arrived, in ms (for RTT samples). */
  ackDelay: number
  /** Received seqs above `cum`, ascending and disjoint. */
  ranges: SackRange[]
}

export interface FrameHeader {
  /** The sender's epoch (its incarnation); never 0. */
  epoch: number
  /** The receiver's epoch as the sender knows it; 0 when the sender does not know it yet. */
  peerEpoch: number
}

export interface DataFrame extends FrameHeader {
  kind: 'data'
  seq: number
  fragIndex: number
  fragCount: number
  /** Present on fragment 0 only. */
  id?: string
  ack?: AckBlock
  payload: Buffer
}

export interface AckFrame extends FrameHeader {
  kind: 'ack'
  ack: AckBlock
}

export type Frame = DataFrame | AckFrame

const U32_MAX = 0xffffffff
const utf8 = new TextDecoder('utf-8', { fatal: true })

export function ackBlockBytes(ack: AckBlock): number {
  return ACK_BLOCK_BYTES + SACK_RANGE_BYTES * ack.ranges.length
}

/** Bytes a DATA frame takes besides its payload. */
export function dataOverhead(idBytes: number | undefined, ack: AckBlock | undefined): number {
  return HEADER_BYTES + DATA_FIELDS_BYTES + (ack ? ackBlockBytes(ack) : 0) + (idBytes === undefined ? 0 : 1 + idBytes)
}

export function encodeFrame(frame: Frame): Buffer {
  if (frame.kind === 'ack') {
    const out = Buffer.alloc(HEADER_BYTES + ackBlockBytes(frame.ack))
    writeHeader(out, FRAME_ACK, 0, frame)
    writeAck(out, HEADER_BYTES, frame.ack)
    return out
  }
  const id = frame.fragIndex === 0 ? (frame.id ?? '') : undefined
  const idBytes = id === undefined ? undefined : Buffer.byteLength(id, 'utf8')
  if (idBytes !== undefined && idBytes > MAX_ID_BYTES)
    throw new RangeError(`message id is ${idBytes} bytes; at most ${MAX_ID_BYTES}`)
  // Every byte is written below, so the pooled, unzeroed allocation is safe (and a frame per message makes it count).
  const out = Buffer.allocUnsafe(dataOverhead(idBytes, frame.ack) + frame.payload.length)
  writeHeader(out, FRAME_DATA, frame.ack ? FLAG_HAS_ACK : 0, frame)
  let at = HEADER_BYTES
  out.writeUInt32BE(frame.seq, at)
  out.writeUInt16BE(frame.fragIndex, at + 4)
  out.writeUInt16BE(frame.fragCount, at + 6)
  at += DATA_FIELDS_BYTES
  if (frame.ack) at = writeAck(out, at, frame.ack)
  if (id !== undefined && idBytes !== undefined) {
    out.writeUInt8(idBytes, at)
    out.write(id, at + 1, 'utf8')
    at += 1 + idBytes
  }
  frame.payload.copy(out, at)
  return out
}

function writeHeader(out: Buffer, kind: number, flags: number, header: FrameHeader): void {
  out.writeUInt8(kind, 0)
  out.writeUInt8(flags, 1)
  out.writeUInt32BE(header.epoch, 2)
  out.writeUInt32BE(header.peerEpoch, 6)
}

function writeAck(out: Buffer, at: number, ack: AckBlock): number {
  out.writeUInt32BE(ack.cum, at)
  out.writeUInt32BE(ack.limit, at + 4)
  out.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(ack.ackDelay))), at + 8)
  out.writeUInt8(ack.ranges.length, at + 10)
  at += ACK_BLOCK_BYTES
  for (const range of ack.ranges) {
    out.writeUInt16BE(range.start - ack.cum, at)
    out.writeUInt16BE(range.length, at + 2)
    at += SACK_RANGE_BYTES
  }
  return at
}

/**
 * Decodes one frame. Throws FrameError for anything malformed, never another error.
 * `maxBytes` rejects frames larger than the receiver is willing to buffer.
 */
export function decodeFrame(bytes: Uint8Array, maxBytes = Infinity): Frame {
  if (bytes.length > maxBytes) throw new FrameError('too-large', `${bytes.length} bytes; at most ${maxBytes}`)
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  need(buf, 0, HEADER_BYTES, 'header')
  const kind = buf.readUInt8(0)
  const flags = buf.readUInt8(1)
  const epoch = buf.readUInt32BE(2)
  const peerEpoch = buf.readUInt32BE(6)
  if (epoch === 0) throw new FrameError('bad-field', 'epoch is 0')
  if (kind === FRAME_ACK) {
    if (flags !== 0) throw new FrameError('unknown-kind', `ACK flags 0x${flags.toString(16)}`)
    const { ack, end } = readAck(buf, HEADER_BYTES)
    if (end !== buf.length) throw new FrameError('trailing', `${buf.length - end} bytes after the ack block`)
    return { kind: 'ack', epoch, peerEpoch, ack }
  }
  if (kind !== FRAME_DATA) throw new FrameError('unknown-kind', `frame kind ${kind}`)
  if ((flags & ~FLAG_HAS_ACK) !== 0) throw new FrameError('unknown-kind', `DATA flags 0x${flags.toString(16)}`)
  if (peerEpoch === 0) throw new FrameError('bad-field', 'DATA frame addressed to peer epoch 0')
  let at = HEADER_BYTES
  need(buf, at, DATA_FIELDS_BYTES, 'data fields')
  const seq = buf.readUInt32BE(at)
  const fragIndex = buf.readUInt16BE(at + 4)
  const fragCount = buf.readUInt16BE(at + 6)
  at += DATA_FIELDS_BYTES
  if (fragCount === 0) throw new FrameError('bad-field', 'fragCount is 0')
  if (fragIndex >= fragCount) throw new FrameError('bad-field', `fragIndex ${fragIndex} >= fragCount ${fragCount}`)
  if (seq < fragIndex) throw new FrameError('bad-field', `seq ${seq} < fragIndex ${fragIndex}`)
  if (seq - fragIndex + fragCount - 1 > U32_MAX) throw new FrameError('bad-field', 'message runs past seq 2^32-1')
  let ack: AckBlock | undefined
  if (flags & FLAG_HAS_ACK) {
    const read = readAck(buf, at)
    ack = read.ack
    at = read.end
  }
  let id: string | undefined
  if (fragIndex === 0) {
    need(buf, at, 1, 'id length')
    const idLength = buf.readUInt8(at)
    if (idLength === 0) throw new FrameError('bad-field', 'empty message id')
    need(buf, at + 1, idLength, 'id')
    try {
      id = utf8.decode(buf.subarray(at + 1, at + 1 + idLength))
    } catch {
      throw new FrameError('bad-field', 'message id is not UTF-8')
    }
    at += 1 + idLength
  }
  return { kind: 'data', epoch, peerEpoch, seq, fragIndex, fragCount, id, ack, payload: buf.subarray(at) }
}

function need(buf: Buffer, at: number, length: number, what: string): void {
  if (at + length > buf.length)
    throw new FrameError('truncated', `${what} needs ${length} bytes at offset ${at}; frame is ${buf.length}`)
}

function readAck(buf: Buffer, at: number): { ack: AckBlock; end: number } {
  need(buf, at, ACK_BLOCK_BYTES, 'ack block')
  const cum = buf.readUInt32BE(at)
  const limit = buf.readUInt32BE(at + 4)
  const ackDelay = buf.readUInt16BE(at + 8)
  const count = buf.readUInt8(at + 10)
  at += ACK_BLOCK_BYTES
  if (limit < cum) throw new FrameError('bad-field', `ack limit ${limit} < cum ${cum}`)
  if (count > MAX_SACK_RANGES) throw new FrameError('bad-field', `${count} SACK ranges; at most ${MAX_SACK_RANGES}`)
  need(buf, at, count * SACK_RANGE_BYTES, 'SACK ranges')
  const ranges: SackRange[] = []
  // Ranges ascend and do not touch; the first may start at cum (received, but its message not yet delivered).
  let floor = cum
  for (let i = 0; i < count; i++) {
    const start = cum + buf.readUInt16BE(at)
    const length = buf.readUInt16BE(at + 2)
    at += SACK_RANGE_BYTES
    if (length === 0) throw new FrameError('bad-field', `SACK range ${i} is empty`)
    if (start < floor) throw new FrameError('bad-field', `SACK range ${i} overlaps cum or the range before it`)
    if (start + length > U32_MAX) throw new FrameError('bad-field', `SACK range ${i} runs past seq 2^32-1`)
    ranges.push({ start, length })
    floor = start + length + 1
  }
  return { ack: { cum, limit, ackDelay, ranges }, end: at }
}

/**
 * The message id in a frame this side encoded, if it is the first fragment of a message; undefined otherwise.
 * A cheap look at our own output (no checks), so the app can tell when a message first went out.
 */
export function peekFirstFragmentId(frame: Buffer): string | undefined {
  if (frame[0] !== FRAME_DATA || frame.readUInt16BE(HEADER_BYTES + 4) !== 0) return undefined
  let at = HEADER_BYTES + DATA_FIELDS_BYTES
  if (frame[1] & FLAG_HAS_ACK) at += ACK_BLOCK_BYTES + SACK_RANGE_BYTES * frame[at + 10]
  return frame.toString('utf8', at + 1, at + 1 + frame[at])
}

/**
 * Packs frames, in order, into as few datagrams as fit MAX_BUNDLE_BYTES: a frame that fits no bundle beside another
 * goes alone, as itself. Each result lists the frames it carries.
 */
export function bundleFrames(frames: Buffer[]): { bytes: Buffer; frames: Buffer[] }[] {
  const out: { bytes: Buffer; frames: Buffer[] }[] = []
  let group: Buffer[] = []
  let size = BUNDLE_HEADER_BYTES
  const close = () => {
    if (group.length === 1) out.push({ bytes: group[0], frames: group })
    else if (group.length > 1) out.push({ bytes: encodeBundle(group, size), frames: group })
    group = []
    size = BUNDLE_HEADER_BYTES
  }
  for (const frame of frames) {
    if (size + BUNDLE_LENGTH_BYTES + frame.length > MAX_BUNDLE_BYTES) close()
    group.push(frame)
    size += BUNDLE_LENGTH_BYTES + frame.length
  }
  close()
  return out
}

function encodeBundle(frames: Buffer[], size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  out[0] = FRAME_BUNDLE
  let at = BUNDLE_HEADER_BYTES
  for (const frame of frames) {
    out.writeUInt16BE(frame.length, at)
    frame.copy(out, at + BUNDLE_LENGTH_BYTES)
    at += BUNDLE_LENGTH_BYTES + frame.length
  }
  return out
}

/** The frames of a bundle, as views into it (each still to be decoded). Throws FrameError for a malformed bundle. */
export function unbundle(bytes: Uint8Array): Buffer[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  if (buf.length > MAX_BUNDLE_BYTES)
    throw new FrameError('too-large', `bundle of ${buf.length} bytes; at most ${MAX_BUNDLE_BYTES}`)
  if (buf[0] !== FRAME_BUNDLE) throw new FrameError('unknown-kind', `frame kind ${buf[0]} is not a bundle`)
  const frames: Buffer[] = []
  for (let at = BUNDLE_HEADER_BYTES; at < buf.length;) {
    need(buf, at, BUNDLE_LENGTH_BYTES, 'bundle length')
    const length = buf.readUInt16BE(at)
    at += BUNDLE_LENGTH_BYTES
    if (length === 0) throw new FrameError('bad-field', 'empty frame in a bundle')
    need(buf, at, length, 'bundled frame')
    frames.push(buf.subarray(at, at + length))
    at += length
  }
  if (frames.length === 0) throw new FrameError('truncated', 'empty bundle')
  return frames
}
