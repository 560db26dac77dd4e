// Which identity key sizes work: the registration carries our public key in one datagram, and so must every handshake
// message; `rsa.bits` allows exactly the sizes measured here to fit.
import { expect } from 'chai'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { encodeJson, FrameKind, MAX_DATAGRAM_BYTES } from '../../../core/wire'
import { CHANNEL_OVERHEAD, MAX_NAME_BYTES, type ClientMessage } from '../../../protocol'
import { MAX_LOCAL_CANDIDATES } from '../../hole-punch/send-policy'
import { SecureChannel } from '../channel'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { FIXTURE_KEYS } from '../../../core/test/support'
import { checkPublicKey, IDENTITY_RSA_BITS, identityFromPem, type RsaIdentity } from '../identity'
import { fixtureIdentity } from './fixtures'
import { exchange } from './helpers'

function newIdentity(bits: number): RsaIdentity {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  return identityFromPem(privateKey)
}

/** The longest name there is: 64 bytes of UTF-8, the limit everywhere (21 CJK letters of 3 bytes each, and one more byte). */
const LONG_NAME = '名'.repeat(21) + 'a'

/** The largest registration step a client sends: `register` in clear (the longest name, a full cookie, the key, the
 *  channel's ephemeral key), or `prove` sealed in a CHANNEL frame (a signature as long as the key's modulus, four local
 *  addresses of the longest form, as hole-punch sends at most MAX_LOCAL_CANDIDATES, the NAT type and the instance). */
function registrationBytes(identity: Pick<RsaIdentity, 'publicKeyPem'>): number {
  const register: ClientMessage = {
    t: 'register',
    rid: 'f'.repeat(16),
    cookie: 'c'.repeat(64),
    name: LONG_NAME,
    key: identity.publicKeyPem,
    eph: 'e'.repeat(43),
  }
  const modulusBytes = (createPublicKey(identity.publicKeyPem).asymmetricKeyDetails?.modulusLength ?? 0) / 8
  const prove: ClientMessage = {
    t: 'prove',
    rid: 'f'.repeat(16),
    sig: Buffer.alloc(modulusBytes, 0xff).toString('base64'),
    local: Array.from({ length: MAX_LOCAL_CANDIDATES }, () => ({ address: '255.255.255.255', port: 65535 })),
    nat: 'symmetric',
    instance: 'f'.repeat(16),
  }
  return Math.max(
    encodeJson(FrameKind.Server, register).length,
    encodeJson(FrameKind.Server, prove).length + CHANNEL_OVERHEAD,
  )
}

/** The longest names the handshake carries: 64 bytes of UTF-8 (SecureChannel's own limit). */
const [HANDSHAKE_NAME_A, HANDSHAKE_NAME_B] = ['й'.repeat(32), 'ж'.repeat(32)]

/** The largest handshake message between two such identities, as framed. */
function largestHandshakeBytes(a: RsaIdentity, b: RsaIdentity): number {
  const ours = new SecureChannel({
    me: { name: HANDSHAKE_NAME_A, identity: a },
    peer: { name: HANDSHAKE_NAME_B, publicKeyPem: b.publicKeyPem },
  })
  const theirs = new SecureChannel({
    me: { name: HANDSHAKE_NAME_B, identity: b },
    peer: { name: HANDSHAKE_NAME_A, publicKeyPem: a.publicKeyPem },
  })
  const [responder, initiator] = ours.initiator ? [theirs, ours] : [ours, theirs]
  return Math.max(...exchange(responder, initiator).map((step) => step.bytes.length + 3))
}

describe('rsa: identity key sizes that fit the frames', function () {
  this.timeout(60_000)

  for (const bits of IDENTITY_RSA_BITS) {
    it(`${bits} bits: the largest registration and handshake fit in ${MAX_DATAGRAM_BYTES} bytes`, () => {
      // The fixtures are 3072-bit keys: no need to wait for two new ones.
      const [a, b] =
        bits === 3072 ? [fixtureIdentity('alice'), fixtureIdentity('bob')] : [newIdentity(bits), newIdentity(bits)]
      expect(Buffer.byteLength(LONG_NAME)).to.equal(MAX_NAME_BYTES)
      expect(registrationBytes(a)).to.be.at.most(MAX_DATAGRAM_BYTES)
      expect(largestHandshakeBytes(a, b)).to.be.at.most(MAX_DATAGRAM_BYTES)
      // The frame encoder agrees (it throws past the limit).
      expect(() => encodeJson(FrameKind.Server, { t: 'register', name: LONG_NAME, key: a.publicKeyPem })).to.not.throw()
    })
  }

  it('4096 bits would not fit the handshake: why it is not allowed', () => {
    // Since the registration's proof travels sealed with the local endpoints, a 4096-bit registration fits; the
    // handshake's INIT does not (a 512-byte OAEP secret and a 512-byte signature besides the names and keys).
    const publicKeyPem = fs.readFileSync(path.join(FIXTURE_KEYS, 'public-4096.pem'), 'utf8')
    expect(checkPublicKey(publicKeyPem).bits).to.equal(4096)
    expect(registrationBytes({ publicKeyPem })).to.be.at.most(MAX_DATAGRAM_BYTES)
    expect(largestHandshakeBytes(newIdentity(4096), newIdentity(4096))).to.be.greaterThan(MAX_DATAGRAM_BYTES)
  })
})
