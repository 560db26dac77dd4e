// Which identity key sizes work: the registration carries our public key in one datagram, and so must every handshake
// message; `rsa.bits` allows exactly the sizes measured here to fit.
import { expect } from 'chai'
import { generateKeyPairSync } from 'node:crypto'
import { encodeJson, FrameKind, MAX_DATAGRAM_BYTES } from '../../../core/wire'
import { MAX_NAME_BYTES, type ClientMessage } from '../../../protocol'
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

/** The largest registration a client sends: the longest name, a full cookie, four local addresses of the longest form
 *  (hole-punch sends at most MAX_LOCAL_CANDIDATES), the process's instance and the channel's ephemeral key. */
function registrationBytes(identity: Pick<RsaIdentity, 'publicKeyPem'>): number {
  const local = Array.from({ length: MAX_LOCAL_CANDIDATES }, () => ({ address: '255.255.255.255', port: 65535 }))
  const message: ClientMessage = {
    t: 'register',
    rid: 'f'.repeat(16),
    cookie: 'c'.repeat(64),
    name: LONG_NAME,
    key: identity.publicKeyPem,
    local,
    nat: 'symmetric',
    instance: 'f'.repeat(16),
    eph: 'e'.repeat(43),
  }
  return Buffer.byteLength(JSON.stringify(message)) + 3
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
      expect(() =>
        encodeJson(FrameKind.Server, { t: 'register', name: LONG_NAME, key: a.publicKeyPem, local: [] }),
      ).to.not.throw()
    })
  }

  it('4096 bits would not fit the registration: why it is not allowed', () => {
    // Only the public half matters here; a stored one spares the test generating a 4096-bit key.
    const publicKeyPem = fs.readFileSync(path.join(FIXTURE_KEYS, 'public-4096.pem'), 'utf8')
    expect(checkPublicKey(publicKeyPem).bits).to.equal(4096)
    expect(registrationBytes({ publicKeyPem })).to.be.greaterThan(MAX_DATAGRAM_BYTES)
  })
})
