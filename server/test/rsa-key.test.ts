// The server's own reading of RSA public keys (server/rsa-key.ts) against OpenSSL's: the same key or the same refusal
// for every fixture key, and for damaged keys, never a key OpenSSL would read differently (or refuse).
import { expect } from 'chai'
import * as fc from 'fast-check'
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { FIXTURE_KEYS, publicPem } from '../../core/test/support'
import { checkRsaPublicKey } from '../../protocol'
import { parseRsaPublicKey } from '../rsa-key'

const jwk = (key: KeyObject) => JSON.stringify(key.export({ format: 'jwk' }))

/** What OpenSSL and our policy make of a PEM: the key's JWK, or the refusal. */
function openssl(pem: string): string {
  const problem = checkRsaPublicKey(pem)
  return problem ?? jwk(createPublicKey(pem))
}

const ours = (pem: string): string => {
  const parsed = parseRsaPublicKey(pem)
  return typeof parsed === 'string' ? parsed : jwk(parsed)
}

describe('server parseRsaPublicKey', () => {
  const keys = [
    ...['alice', 'bob', 'carol', 'dave', 'weak-1024', 'e3-2048'].map(publicPem),
    fs.readFileSync(path.join(FIXTURE_KEYS, 'public-4096.pem'), 'utf8'),
    generateKeyPairSync('rsa', { modulusLength: 8192 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  ]

  it('reads every fixture key as OpenSSL does, or refuses it for the same reason (also with CRLF line ends, as node-forge writes)', () => {
    for (const pem of [...keys, ...keys.map((k) => k.replace(/\n/g, '\r\n'))])
      expect(ours(pem), pem).to.equal(openssl(pem))
    expect(ours(publicPem('weak-1024'))).to.equal('the key must have 2048 to 8192 bits')
    expect(ours(publicPem('e3-2048'))).to.equal('the key must have public exponent 65537')
  })

  it('never reads a damaged key differently from OpenSSL (one byte of its DER changed, or cut short)', () => {
    const der = createPublicKey(publicPem('alice')).export({ type: 'spki', format: 'der' })
    const pemOf = (bytes: Buffer) =>
      `-----BEGIN PUBLIC KEY-----\n${bytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`
    const outcome = (pem: string) => {
      try {
        return openssl(pem)
      } catch {
        return 'refused'
      }
    }
    fc.assert(
      fc.property(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (at, xor, cut) => {
        const bytes = Buffer.from(der)
        bytes[at] ^= xor
        const pem = pemOf(cut ? bytes.subarray(0, at + 1) : bytes)
        const theirs = outcome(pem)
        let mine: string
        try {
          mine = ours(pem)
        } catch {
          mine = 'refused'
        }
        // Where OpenSSL refuses, so do we (with its reason or by throwing); where it reads a key, we read the same one.
        if (theirs.startsWith('{')) expect(mine).to.equal(theirs)
        else expect(mine.startsWith('{'), `${pem}: we read a key that OpenSSL refuses (${theirs})`).to.equal(false)
      }),
      { numRuns: 2000 },
    )
  })
})
