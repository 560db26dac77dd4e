// What travels inside a sealed packet between two peers: one JSON object with a `type`. `chat` is the core's; plugins
// route their own types (receipts, control) in the `route` hook.

/** The decoded content of a sealed packet: one JSON object with a `type` (`chat`, receipts, control). */
export interface Envelope {
  type: string
  [field: string]: unknown
}

/** A chat message as it travels: the id receipts and history key on, the text, and the sender's clock. */
export interface ChatEnvelope extends Envelope {
  type: 'chat'
  id: string
  text: string
  ts: number
}

/** The longest text a chat message carries, in bytes of UTF-8. */
export const MAX_TEXT_BYTES = 64 * 1024

export function encodeEnvelope(envelope: Envelope): Buffer {
  return Buffer.from(JSON.stringify(envelope), 'utf8')
}

/** An envelope, or undefined for anything that is not a JSON object with a string `type`. */
export function decodeEnvelope(bytes: Buffer): Envelope | undefined {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  return typeof (value as Envelope).type === 'string' ? (value as Envelope) : undefined
}

/** Whether a `chat` envelope is well formed: an id of 8–64 hex digits, a text within MAX_TEXT_BYTES, a numeric time. */
export function isChatEnvelope(envelope: Envelope): envelope is ChatEnvelope {
  const { type, id, text, ts } = envelope
  return (
    type === 'chat' &&
    typeof id === 'string' &&
    /^[0-9a-f]{8,64}$/.test(id) &&
    typeof text === 'string' &&
    typeof ts === 'number' &&
    Buffer.byteLength(text) <= MAX_TEXT_BYTES
  )
}
