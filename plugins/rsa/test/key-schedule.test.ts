// The key schedule, computed independently from docs/PROTOCOL.md ("Keys", "DATA body") out of what crosses the wire and
// the ephemeral secrets, and checked against what SecureChannel derives; and the transcript's part in it: two handshakes
// with the same key material and different transcript bytes must give different keys.
import { expect } from 'chai'
import { createDecipheriv, createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { OAEP } from '../channel'
import { fixtureIdentity } from './fixtures'
import { exchange, pair, type Pair } from './helpers'

/** The real node:crypto object that channel.ts calls through, so a test can see (or fix) its random choices. */
const nodeCrypto = createRequire(__filename)('node:crypto') as typeof import('node:crypto')
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

/** Runs `body` with generateKeyPairSync and randomBytes of node:crypto replaced, restoring them after. */
function withCrypto<T>(
  replace: { x25519?: () => { publicKey: KeyObject; privateKey: KeyObject }; secret?: () => Buffer },
  body: (generated: KeyObject[]) => T,
): T {
  const original = { generateKeyPairSync: nodeCrypto.generateKeyPairSync, randomBytes: nodeCrypto.randomBytes }
  const generated: KeyObject[] = []
  const patched = nodeCrypto as unknown as Record<string, unknown>
  patched.generateKeyPairSync = (type: string, ...rest: unknown[]) => {
    const pair =
      type === 'x25519' && replace.x25519
        ? replace.x25519()
        : (original.generateKeyPairSync as (...args: unknown[]) => { privateKey: KeyObject })(type, ...rest)
    if (type === 'x25519') generated.push(pair.privateKey)
    return pair
  }
  patched.randomBytes = (size: number) =>
    size === 32 && replace.secret ? replace.secret() : original.randomBytes(size)
  try {
    return body(generated)
  } finally {
    patched.generateKeyPairSync = original.generateKeyPairSync
    patched.randomBytes = original.randomBytes
  }
}

/** One handshake; returns the INIT and RESP bytes as they crossed. */
function handshake(p: Pair): { init: Buffer; resp: Buffer } {
  const crossed = exchange(p.responder, p.initiator)
  const init = crossed.find((d) => d.bytes[0] === 0x02)?.bytes
  const resp = crossed.find((d) => d.bytes[0] === 0x03)?.bytes
  if (!init || !resp) throw new Error('the handshake did not complete')
  return { init, resp }
}

const headerLength = (message: Buffer) => 3 + message[1] + message[2 + message[1]]
const fingerprint = (name: 'alice' | 'bob') =>
  createHash('sha256')
    .update(createPublicKey(fixtureIdentity(name).publicKeyPem).export({ type: 'spki', format: 'der' }))
    .digest()
const rawPublic = (key: KeyObject) =>
  createPublicKey(key).export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length)

/** Opens a DATA body with the key and prefix given, as PROTOCOL.md describes it. */
function openIndependently(body: Buffer, key: Buffer, prefix: Buffer, aad: Buffer): Buffer {
  const sessionId = body.subarray(0, 8)
  const counter = body.subarray(8, 16)
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.concat([prefix, counter]), { authTagLength: 16 })
  decipher.setAAD(Buffer.concat([aad, sessionId, counter]))
  decipher.setAuthTag(body.subarray(body.length - 16))
  return Buffer.concat([decipher.update(body.subarray(16, body.length - 16)), decipher.final()])
}

describe('rsa: the key schedule', () => {
  it('derives the keys, prefixes and session id that PROTOCOL.md gives, from the full INIT and RESP', () => {
    withCrypto({}, (generated) => {
      const p = pair('alice', 'bob')
      const { init, resp } = handshake(p)
      // The initiator makes its ephemeral key first (for INIT), the responder second (for RESP).
      const [ephemeralI, ephemeralR] = generated
      const h = headerLength(init)
      expect(init.subarray(h, h + 32)).to.deep.equal(rawPublic(ephemeralI))
      expect(resp.subarray(headerLength(resp), headerLength(resp) + 32)).to.deep.equal(rawPublic(ephemeralR))

      // secret: OAEP-decrypted from INIT with the responder's key; ikm = X25519(ephI, ephR) || secret.
      const responderName = p.responder.myName as 'alice' | 'bob'
      const initiatorName = p.initiator.myName as 'alice' | 'bob'
      const encryptedLength = init.readUInt16BE(h + 64)
      const secret = nodeCrypto.privateDecrypt(
        { key: createPrivateKey(fixtureIdentity(responderName).privateKeyPem), ...OAEP },
        init.subarray(h + 66, h + 66 + encryptedLength),
      )
      expect(secret.length).to.equal(32)
      const ephemeralRPublic = createPublicKey({
        key: Buffer.concat([X25519_SPKI_PREFIX, rawPublic(ephemeralR)]),
        format: 'der',
        type: 'spki',
      })
      const shared = nodeCrypto.diffieHellman({ privateKey: ephemeralI, publicKey: ephemeralRPublic })
      const ikm = Buffer.concat([shared, secret])
      const salt = createHash('sha256').update(init).update(resp).digest()
      const info = Buffer.concat([Buffer.from('udsu-keys-v1'), fingerprint(initiatorName), fingerprint(responderName)])
      const okm = Buffer.from(hkdfSync('sha256', ikm, salt, info, 80))
      const keyIR = okm.subarray(0, 32)
      const keyRI = okm.subarray(32, 64)
      const prefixIR = okm.subarray(64, 68)
      const prefixRI = okm.subarray(68, 72)
      const sessionId = okm.subarray(72, 80).toString('hex')

      expect(p.initiator.sessionIds()).to.deep.equal([sessionId])
      expect(p.responder.sessionIds()).to.deep.equal([sessionId])
      const aad = Buffer.from('header bytes')
      const fromInitiator = p.initiator.seal(Buffer.from('to the responder'), aad)
      expect(fromInitiator.subarray(0, 8).toString('hex')).to.equal(sessionId)
      expect(fromInitiator.subarray(8, 16)).to.deep.equal(Buffer.alloc(8)) // counter 0
      expect(openIndependently(fromInitiator, keyIR, prefixIR, aad).toString()).to.equal('to the responder')
      const fromResponder = p.responder.seal(Buffer.from('to the initiator'), aad)
      expect(openIndependently(fromResponder, keyRI, prefixRI, aad).toString()).to.equal('to the initiator')
    })
  })

  it('gives different keys to two handshakes that differ only in transcript bytes', () => {
    // The same ephemeral keys and the same secret both times: only the nonces (so the INIT and RESP bytes) differ.
    const ephemeralI = nodeCrypto.generateKeyPairSync('x25519')
    const ephemeralR = nodeCrypto.generateKeyPairSync('x25519')
    const secret = nodeCrypto.randomBytes(32)
    const sessions = [0, 1].map(() => {
      let call = 0
      return withCrypto(
        { x25519: () => (call++ % 2 === 0 ? ephemeralI : ephemeralR), secret: () => Buffer.from(secret) },
        () => {
          const p = pair('alice', 'bob')
          const crossed = handshake(p)
          return { p, ...crossed }
        },
      )
    })
    const [one, two] = sessions
    // Same key material: the ephemeral keys on the wire are the same.
    const h = headerLength(one.init)
    expect(one.init.subarray(h, h + 32)).to.deep.equal(two.init.subarray(h, h + 32))
    expect(one.init).not.to.deep.equal(two.init)
    expect(one.p.initiator.sessionIds()[0]).not.to.equal(two.p.initiator.sessionIds()[0])
    // And a message of one session does not open in the other even once the session id is made to match.
    const body = one.p.initiator.seal(Buffer.from('only for session one'))
    const relabelled = Buffer.concat([Buffer.from(two.p.initiator.sessionIds()[0], 'hex'), body.subarray(8)])
    expect(() => two.p.responder.open(relabelled)).to.throw(/failed authentication/)
  })
})
