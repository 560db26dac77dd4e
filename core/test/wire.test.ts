// The datagram frame and the host:port parser: what goes on the wire comes back intact, and junk is refused quietly.
import { expect } from 'chai'
import fc from 'fast-check'
import {
  decodeFrame,
  decodeJson,
  encodeFrame,
  encodeJson,
  formatEndpoint,
  frameHeader,
  FrameKind,
  HEADER_BYTES,
  isEndpoint,
  MAGIC,
  MAX_DATAGRAM_BYTES,
  parseHostPort,
  sameEndpoint,
  VERSION,
} from '../wire'
import { thrown } from './support'

const KINDS = Object.values(FrameKind)

describe('core/wire', () => {
  describe('frames', () => {
    it('round-trip every kind with its body', () => {
      for (const kind of KINDS) {
        const body = Buffer.from([0, 1, 2, 255, kind])
        const bytes = encodeFrame(kind, body)
        expect([...bytes.subarray(0, HEADER_BYTES)]).to.deep.equal([MAGIC, VERSION, kind])
        const frame = decodeFrame(bytes)
        expect(frame?.kind).to.equal(kind)
        expect(frame?.body.equals(body)).to.equal(true)
      }
    })

    it('round-trip any body that fits a datagram (property)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...KINDS),
          fc.uint8Array({ maxLength: MAX_DATAGRAM_BYTES - HEADER_BYTES }),
          (kind, body) => {
            const frame = decodeFrame(encodeFrame(kind, body))
            return frame !== undefined && frame.kind === kind && frame.body.equals(Buffer.from(body))
          },
        ),
      )
    })

    it('accept an empty body', () => {
      expect(decodeFrame(frameHeader(FrameKind.Probe))?.body.length).to.equal(0)
    })

    it('refuse to encode a frame larger than a datagram, and encode one exactly that size', () => {
      expect(encodeFrame(FrameKind.Data, Buffer.alloc(MAX_DATAGRAM_BYTES - HEADER_BYTES)).length).to.equal(
        MAX_DATAGRAM_BYTES,
      )
      expect(
        thrown(() => encodeFrame(FrameKind.Data, Buffer.alloc(MAX_DATAGRAM_BYTES - HEADER_BYTES + 1))).message,
      ).to.equal(`frame of ${MAX_DATAGRAM_BYTES + 1} bytes exceeds ${MAX_DATAGRAM_BYTES}`)
      expect(() => encodeJson(FrameKind.Server, { t: 'x', pad: 'a'.repeat(MAX_DATAGRAM_BYTES) })).to.throw(/exceeds/)
    })

    it('decode nothing from a wrong magic, version or kind', () => {
      const good = encodeFrame(FrameKind.Server, Buffer.from('{}'))
      expect(decodeFrame(good)).to.not.equal(undefined)
      for (const [index, value] of [
        [0, MAGIC ^ 1],
        [1, VERSION + 1],
        [1, 0],
        [2, 0],
        [2, 7],
        [2, 255],
      ]) {
        const bad = Buffer.from(good)
        bad[index] = value
        expect(decodeFrame(bad), `byte ${index} = ${value}`).to.equal(undefined)
      }
    })

    it('decode nothing from input shorter than the header or larger than a datagram', () => {
      expect(decodeFrame(Buffer.alloc(0))).to.equal(undefined)
      expect(decodeFrame(Buffer.from([MAGIC, VERSION]))).to.equal(undefined)
      const oversized = Buffer.concat([
        frameHeader(FrameKind.Data),
        Buffer.alloc(MAX_DATAGRAM_BYTES - HEADER_BYTES + 1),
      ])
      expect(decodeFrame(oversized)).to.equal(undefined)
      expect(decodeFrame(oversized.subarray(0, MAX_DATAGRAM_BYTES))).to.not.equal(undefined)
    })

    it('never throw on arbitrary bytes, and decode only what carries a valid header (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: MAX_DATAGRAM_BYTES + 100 }), (raw) => {
          const bytes = Buffer.from(raw)
          const frame = decodeFrame(bytes)
          const valid =
            bytes.length >= HEADER_BYTES &&
            bytes.length <= MAX_DATAGRAM_BYTES &&
            bytes[0] === MAGIC &&
            bytes[1] === VERSION &&
            (KINDS as number[]).includes(bytes[2])
          return valid ? frame !== undefined && frame.body.equals(bytes.subarray(HEADER_BYTES)) : frame === undefined
        }),
        { numRuns: 500 },
      )
    })
  })

  describe('JSON bodies', () => {
    it('round-trip a message', () => {
      const message = { t: 'register', rid: 'ab12', name: 'zoë', local: [{ address: '10.0.0.2', port: 5000 }] }
      const frame = decodeFrame(encodeJson(FrameKind.Server, message))
      expect(frame?.kind).to.equal(FrameKind.Server)
      expect(decodeJson(frame!.body)).to.deep.equal(message)
    })

    it('round-trip any object with a string t (property)', () => {
      fc.assert(
        fc.property(
          fc.string({ maxLength: 50 }),
          fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
          (t, rest) => {
            const message = { ...rest, t }
            const decoded = decodeJson(Buffer.from(JSON.stringify(message)))
            return decoded !== undefined && JSON.stringify(decoded) === JSON.stringify(message)
          },
        ),
      )
    })

    it('decode nothing from non-JSON, non-objects or a missing or non-string t', () => {
      for (const text of [
        '',
        'not json',
        '{"t":',
        '[{"t":"x"}]',
        'null',
        '"t"',
        '42',
        '{}',
        '{"t":1}',
        '{"t":null}',
        '{"type":"x"}',
      ]) {
        expect(decodeJson(Buffer.from(text)), text).to.equal(undefined)
      }
      expect(decodeJson(Buffer.from('{"t":""}'))).to.deep.equal({ t: '' })
    })

    it('never throw on arbitrary bytes (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2000 }), (raw) => {
          const message = decodeJson(Buffer.from(raw))
          return message === undefined || (typeof message === 'object' && typeof message.t === 'string')
        }),
        { numRuns: 500 },
      )
      fc.assert(
        fc.property(fc.json(), (text) => {
          const message = decodeJson(Buffer.from(text))
          return message === undefined || typeof message.t === 'string'
        }),
        { numRuns: 300 },
      )
    })
  })

  describe('parseHostPort', () => {
    it('accepts host:port for names, IPv4 and bracketed IPv6', () => {
      expect(parseHostPort('127.0.0.1:7777')).to.deep.equal({ host: '127.0.0.1', port: 7777 })
      expect(parseHostPort('localhost:1')).to.deep.equal({ host: 'localhost', port: 1 })
      expect(parseHostPort('[::1]:7777')).to.deep.equal({ host: '::1', port: 7777 })
      expect(parseHostPort('chat.example.org:65535')).to.deep.equal({ host: 'chat.example.org', port: 65535 })
      expect(parseHostPort('  10.0.0.1:80 ')).to.deep.equal({ host: '10.0.0.1', port: 80 })
    })

    it('refuses anything else with an error that shows the input and an example', () => {
      for (const text of [
        'x',
        'host:',
        'host:0',
        'host:65536',
        'host:99999',
        ':7777',
        'host:7a',
        'host:-1',
        'a b:1',
        '',
        'host:123456',
      ]) {
        expect(thrown(() => parseHostPort(text)).message, text).to.equal(
          `"${text}" is not host:port (e.g. 127.0.0.1:7777)`,
        )
      }
    })
  })

  describe('endpoints', () => {
    it('isEndpoint accepts an address and a port in 1..65535 only', () => {
      expect(isEndpoint({ address: '127.0.0.1', port: 1 })).to.equal(true)
      expect(isEndpoint({ address: '127.0.0.1', port: 65535 })).to.equal(true)
      for (const bad of [
        null,
        'x',
        {},
        { address: '1.2.3.4' },
        { address: 1, port: 1 },
        { address: 'a', port: 0 },
        { address: 'a', port: 65536 },
        { address: 'a', port: 1.5 },
        { address: 'a'.repeat(65), port: 1 },
      ]) {
        expect(isEndpoint(bad), JSON.stringify(bad)).to.equal(false)
      }
    })

    it('sameEndpoint compares address and port, formatEndpoint prints host:port', () => {
      expect(sameEndpoint({ address: '1.2.3.4', port: 5 }, { address: '1.2.3.4', port: 5 })).to.equal(true)
      expect(sameEndpoint({ address: '1.2.3.4', port: 5 }, { address: '1.2.3.4', port: 6 })).to.equal(false)
      expect(sameEndpoint({ address: '1.2.3.4', port: 5 }, { address: '1.2.3.5', port: 5 })).to.equal(false)
      expect(formatEndpoint({ address: '1.2.3.4', port: 5 })).to.equal('1.2.3.4:5')
    })
  })
})
