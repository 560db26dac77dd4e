// A client's RSA public key, parsed once per registration and cheaply. OpenSSL 3's PEM decoder costs ~200 µs per key
// (its decoder framework, not RSA); the same key built from its modulus and exponent (a JWK) takes ~8 µs. So the
// canonical DER of an RSA SubjectPublicKeyInfo is taken apart here, strictly, and anything else goes to OpenSSL as
// before: the keys accepted do not change (server/test/rsa-key.test.ts checks both paths agree, and that a damaged key
// is never read differently).
import { createPublicKey, type KeyObject } from 'node:crypto'
import { checkRsaPublicKey } from '../protocol'

/** SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }: the only algorithm identifier taken apart here. */
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex')
const PEM =
  /^-----BEGIN PUBLIC KEY-----\r?\n((?:[A-Za-z0-9+/]{64}\r?\n)*[A-Za-z0-9+/]{1,63}={0,2}\r?\n|(?:[A-Za-z0-9+/]{64}\r?\n)+)-----END PUBLIC KEY-----\r?\n?$/

/** A DER element at `at`: its tag, where its content starts and ends; undefined unless its length is minimal and fits. */
function element(der: Buffer, at: number): { tag: number; start: number; end: number } | undefined {
  if (at + 2 > der.length) return undefined
  const tag = der[at]
  let length = der[at + 1]
  let start = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 2 || start + bytes > der.length || der[start] === 0) return undefined
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]
    if (length < 0x80 || (bytes === 2 && length < 0x100)) return undefined
    start += bytes
  }
  const end = start + length
  return end <= der.length ? { tag, start, end } : undefined
}

/** A positive INTEGER's magnitude, minimally encoded; undefined otherwise. */
function positiveInteger(der: Buffer, at: number): { value: Buffer; end: number } | undefined {
  const e = element(der, at)
  if (!e || e.tag !== 0x02 || e.end === e.start) return undefined
  const bytes = der.subarray(e.start, e.end)
  if (bytes[0] & 0x80) return undefined // negative
  if (bytes[0] === 0 && (bytes.length === 1 || !(bytes[1] & 0x80))) return undefined // not minimal, or zero
  return { value: bytes[0] === 0 ? bytes.subarray(1) : bytes, end: e.end }
}

/** The modulus and exponent of a canonical RSA SPKI PEM, or undefined when it is anything else. */
function rsaComponents(pem: string): { n: Buffer; e: Buffer } | undefined {
  const match = PEM.exec(pem)
  if (!match) return undefined
  const base64 = match[1].replace(/\r?\n/g, '')
  const der = Buffer.from(base64, 'base64')
  if (der.toString('base64') !== base64) return undefined
  const spki = element(der, 0)
  if (!spki || spki.tag !== 0x30 || spki.end !== der.length) return undefined
  if (!der.subarray(spki.start, spki.start + RSA_ALGORITHM.length).equals(RSA_ALGORITHM)) return undefined
  const bits = element(der, spki.start + RSA_ALGORITHM.length)
  if (!bits || bits.tag !== 0x03 || bits.end !== der.length || der[bits.start] !== 0) return undefined
  const key = element(der, bits.start + 1)
  if (!key || key.tag !== 0x30 || key.end !== der.length) return undefined
  const n = positiveInteger(der, key.start)
  const e = n && positiveInteger(der, n.end)
  if (!n || !e || e.end !== der.length) return undefined
  return { n: n.value, e: e.value }
}

/**
 * The key as a KeyObject, or the reason it is refused (the policy of checkRsaPublicKey: RSA, 2048 to 8192 bits,
 * exponent 65537).
 */
export function parseRsaPublicKey(pem: string): KeyObject | string {
  const parts = rsaComponents(pem)
  if (parts) {
    const bits = parts.n.length * 8 - Math.clz32(parts.n[0]) + 24
    if (bits < 2048 || bits > 8192) return 'the key must have 2048 to 8192 bits'
    if (!parts.e.equals(Buffer.from([1, 0, 1]))) return 'the key must have public exponent 65537'
    try {
      return createPublicKey({
        key: { kty: 'RSA', n: parts.n.toString('base64url'), e: parts.e.toString('base64url') },
        format: 'jwk',
      })
    } catch {
      // Left to OpenSSL below, which says why.
    }
  }
  const problem = checkRsaPublicKey(pem)
  return problem ?? createPublicKey(pem)
}
