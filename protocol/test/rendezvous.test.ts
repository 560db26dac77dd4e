// Property tests: no input, however hostile, makes a protocol parser throw; what passes is well-formed.
import { expect } from 'chai'
import fc from 'fast-check'
import { decodeRelay, isEndpoint, parseClientMessage, parseServerMessage } from '..'

/** Lowercase hex strings (fast-check 4 has no hexaString). */
const hex = (options: { minLength?: number; maxLength?: number } = {}) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), ...options })

const types = [
  'hello',
  'register',
  'prove',
  'ping',
  'list',
  'connect',
  'bye',
  'relay',
  'mapping',
  'cookie',
  'challenge',
  'registered',
  'pong',
  'mapped',
  'peers',
  'intro',
  'error',
  'other',
]
/** JSON objects shaped like protocol messages, with fields of any type, so the checks behind `t` are exercised. */
const messages = fc.record(
  {
    t: fc.constantFrom(...types),
    rid: fc.oneof(hex({ maxLength: 40 }), fc.anything()),
    name: fc.oneof(fc.string(), fc.anything()),
    key: fc.oneof(fc.string({ maxLength: 1200 }), fc.anything()),
    cookie: fc.oneof(hex(), fc.anything()),
    sig: fc.oneof(fc.base64String(), fc.anything()),
    local: fc.oneof(fc.array(fc.record({ address: fc.string(), port: fc.integer() })), fc.anything()),
    public: fc.oneof(fc.record({ address: fc.string(), port: fc.integer() }), fc.anything()),
    peer: fc.anything(),
    peers: fc.anything(),
    token: fc.oneof(hex({ minLength: 32, maxLength: 32 }), fc.anything()),
    nonce: fc.oneof(hex({ minLength: 32, maxLength: 32 }), fc.anything()),
    to: fc.oneof(fc.string(), fc.anything()),
  },
  { requiredKeys: ['t'] },
)

describe('server/protocol parsers (property tests)', () => {
  it('never throw, and accept only messages whose fields have their types', () => {
    fc.assert(
      fc.property(messages, (message) => {
        const client = parseClientMessage(message)
        if (client && 'rid' in client) expect(client.rid).to.match(/^[0-9a-f]{1,32}$/)
        if (client?.t === 'register') {
          expect(client.name).to.be.a('string')
          expect(client, 'the LAN endpoints never come in the clear register').to.not.have.property('local')
        }
        if (client?.t === 'prove') expect(client.local.every(isEndpoint)).to.equal(true)
        const server = parseServerMessage(message)
        if (server?.t === 'intro') expect(isEndpoint(server.peer.public)).to.equal(true)
      }),
      { numRuns: 3000 },
    )
  })

  it('decodeRelay never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), (bytes) => {
        decodeRelay(Buffer.from(bytes))
      }),
      { numRuns: 3000 },
    )
  })
})
