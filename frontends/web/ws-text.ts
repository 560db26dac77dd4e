// A WebSocket message as text: `ws` hands over a Buffer, an ArrayBuffer or a list of fragments.
import type { RawData } from 'ws'

export function wsText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data).toString('utf8')
}
