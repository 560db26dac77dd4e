// The headless input's line splitting: "\n" only, whatever a text holds, in any chunking, with a bound on a line.
import { expect } from 'chai'
import { PassThrough } from 'node:stream'
import { readJsonLines } from '../json-lines'

/** Feeds `chunks` through readJsonLines and resolves with what it reported, in order. */
function read(chunks: Buffer[], maxBytes = 64): Promise<string[]> {
  const input = new PassThrough()
  const seen: string[] = []
  const done = new Promise<string[]>((resolve) =>
    readJsonLines(input, maxBytes, {
      line: (l) => seen.push(l),
      tooLong: () => seen.push('<too long>'),
      end: () => resolve(seen),
    }),
  )
  for (const chunk of chunks) input.write(chunk)
  input.end()
  return done
}

describe('headless: reading JSON lines', () => {
  it('ends a line at "\\n" only: U+2028, U+2029, U+0085 and a lone "\\r" stay inside it', async () => {
    const text = '{"t":"one\u2028two\u2029three\u0085four\rfive"}'
    expect(await read([Buffer.from(`${text}\n{"t":2}\r\n`)])).to.deep.equal([text, '{"t":2}'])
  })

  it('puts a line together across chunks, even inside a multi-byte character, and keeps a last line without "\\n"', async () => {
    const bytes = Buffer.from('{"t":"日本"}\n{"t":"last"}')
    const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)) // one byte at a time
    expect(await read(chunks)).to.deep.equal(['{"t":"日本"}', '{"t":"last"}'])
  })

  it('skips a line longer than the limit, without buffering it whole, and reads the next one', async () => {
    const long = Buffer.alloc(1000, 'x')
    const chunks = [Buffer.from('{"a":1}\n'), long.subarray(0, 500), long.subarray(500), Buffer.from('yy\n{"b":2}\n')]
    expect(await read(chunks)).to.deep.equal(['{"a":1}', '<too long>', '{"b":2}'])
    // Just over the limit within one chunk is refused too; exactly at it passes.
    expect(await read([Buffer.from(`${'x'.repeat(65)}\n${'y'.repeat(64)}\n`)])).to.deep.equal([
      '<too long>',
      'y'.repeat(64),
    ])
  })
})
