// Input lines of a JSON-lines stream: split on "\n" only (a "\r" before it is dropped). Not node:readline: since Node 24
// it also ends lines at U+2028, U+2029 and U+0085, which JSON leaves raw inside strings, so a message with one became
// three broken commands. A line longer than `maxBytes` is not buffered whole: it is skipped up to its end and reported.
import type { Readable } from 'node:stream'

export interface JsonLinesHandlers {
  line(text: string): void
  /** A line of more than `maxBytes`, skipped. */
  tooLong(): void
  /** The stream ended (its last line, without a newline, was handed to `line` first). */
  end(): void
}

export function readJsonLines(input: Readable, maxBytes: number, on: JsonLinesHandlers): void {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let skipping = false
  const finishLine = (tail: Buffer) => {
    if (skipping) {
      skipping = false
      return
    }
    let line = Buffer.concat([...pending, tail])
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1)
    if (line.length > maxBytes) return on.tooLong()
    on.line(line.toString('utf8'))
  }
  input.on('data', (chunk: Buffer) => {
    let start = 0
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      finishLine(chunk.subarray(start, newline))
      pending = []
      pendingBytes = 0
      start = newline + 1
    }
    if (start >= chunk.length || skipping) return
    pending.push(chunk.subarray(start))
    pendingBytes += chunk.length - start
    if (pendingBytes > maxBytes) {
      // Dropped now, and what follows until the newline with it: the buffer never grows past the limit.
      pending = []
      pendingBytes = 0
      skipping = true
      on.tooLong()
    }
  })
  input.on('end', () => {
    if (pendingBytes > 0) finishLine(Buffer.alloc(0))
    on.end()
  })
}
