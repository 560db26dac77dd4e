// RSA identity keys: load or create the profile's key, check peers' keys, and show them to people.
// node-forge parses and encodes key formats; node:crypto does the hashing and key generation.
import { createHash, generateKeyPair } from 'node:crypto'
import { constants, promises as fs } from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import forge from 'node-forge'
import { writeFileAtomic } from '../../core'

export interface RsaIdentity {
  privateKeyPem: string
  publicKeyPem: string
  /** SHA-256 of the SubjectPublicKeyInfo DER, as `fingerprintOf` shows it. */
  fingerprint: string
  bits: number
}

/** A public key that udsu will not use; `message` says why. */
export class KeyRejected extends Error {
  override name = 'KeyRejected'
}

export const IDENTITY_FILE = 'identity.pem'
export const MIN_RSA_BITS = 2048
export const MAX_RSA_BITS = 8192
export const DEFAULT_RSA_BITS = 3072
/**
 * Sizes of our own key that work: the registration carries the public key in one datagram of at most 1200 bytes
 * (MAX_DATAGRAM_BYTES). Measured at the worst case (a 32-character name, 7 local addresses): 960 bytes at 2048 bits,
 * 1136 at 3072, 1314 at 4096. Peers' keys up to MAX_RSA_BITS are still accepted.
 */
export const IDENTITY_RSA_BITS = [2048, 3072] as const
const REQUIRED_EXPONENT = 0x10001

const generateRsaKeyPair = promisify(generateKeyPair)

/**
 * Loads `identity.pem` from the profile directory, creating a new key there if there is none; `onGenerate` is told
 * first, since a new key takes a moment (seconds on a slow machine).
 */
export async function loadOrCreateIdentity(
  profileDir: string,
  options: { bits?: number; onGenerate?: (bits: number) => void } = {},
): Promise<RsaIdentity> {
  const bits = options.bits ?? DEFAULT_RSA_BITS
  if (!(IDENTITY_RSA_BITS as readonly number[]).includes(bits)) {
    throw new RangeError(`RSA identity size must be one of ${IDENTITY_RSA_BITS.join(', ')} bits, got ${bits}`)
  }
  await fs.mkdir(profileDir, { recursive: true, mode: 0o700 })
  const file = path.join(profileDir, IDENTITY_FILE)

  const existing = await readKeyFile(file)
  if (existing !== undefined) {
    const identity = identityFromPem(existing, file)
    if (!(IDENTITY_RSA_BITS as readonly number[]).includes(identity.bits)) {
      throw new Error(
        `${file} holds a ${identity.bits}-bit key, and udsu's registration fits only ${IDENTITY_RSA_BITS.join(' or ')} bits; move it away to create a new identity`,
      )
    }
    return identity
  }
  options.onGenerate?.(bits)

  // Node's generateKeyPair runs in libuv's thread pool, so the event loop keeps going while it searches
  // for primes. forge's async generateKeyPair delegates to this same call under Node, and otherwise falls
  // back to a JavaScript generator that does run on the main thread, so we call the native one directly.
  const { privateKey } = await generateRsaKeyPair('rsa', {
    modulusLength: bits,
    publicExponent: REQUIRED_EXPONENT,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  // Through a temporary file: a crash never leaves a half-written key behind.
  writeFileAtomic(file, privateKey)
  return identityFromPem(privateKey, file)
}

/**
 * Builds an identity from a PEM RSA private key (PKCS#1 or PKCS#8), checking it as `checkPublicKey` does.
 * `source` names where the PEM came from, for the error message.
 */
export function identityFromPem(privateKeyPem: string, source = 'private key'): RsaIdentity {
  let key: forge.pki.rsa.PrivateKey
  try {
    key = forge.pki.privateKeyFromPem(privateKeyPem)
  } catch (error) {
    throw new Error(
      `${source} is not a readable PEM RSA private key (${errorText(error)}); move it away to create a new identity`,
    )
  }
  if (!key || !key.n || !key.e) {
    throw new Error(`${source} is not an RSA private key; move it away to create a new identity`)
  }
  const publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  const problem = policyProblem(publicKey)
  if (problem !== undefined) {
    throw new Error(`${source} holds a key udsu will not use: ${problem}; move it away to create a new identity`)
  }
  const publicKeyPem = canonicalPublicPem(publicKey)
  return {
    privateKeyPem,
    publicKeyPem,
    fingerprint: formatFingerprint(spkiSha256(publicKey)),
    bits: publicKey.n.bitLength(),
  }
}

/** Checks a peer's public key (SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY" PEM) and returns it in canonical SPKI PEM form. */
export function checkPublicKey(pem: string): { publicKeyPem: string; fingerprint: string; bits: number } {
  const publicKey = parsePublicKey(pem)
  const problem = policyProblem(publicKey)
  if (problem !== undefined) throw new KeyRejected(problem)
  return {
    publicKeyPem: canonicalPublicPem(publicKey),
    fingerprint: formatFingerprint(spkiSha256(publicKey)),
    bits: publicKey.n.bitLength(),
  }
}

/** SHA-256 of the key's SubjectPublicKeyInfo DER, as 16 space-separated groups of 4 lowercase hex digits. */
export function fingerprintOf(publicKeyPem: string): string {
  return formatFingerprint(spkiSha256(parsePublicKey(publicKeyPem)))
}

/** The raw 32-byte SHA-256 of the key's SubjectPublicKeyInfo DER. Throws KeyRejected if it is not an RSA public key. */
export function fingerprintBytes(publicKeyPem: string): Buffer {
  return spkiSha256(parsePublicKey(publicKeyPem))
}

/**
 * A 60-digit number two people compare (read aloud, or side by side) to know that each holds the other's
 * real key. Like Signal's safety numbers it is two 30-digit halves, one per person, each derived from that
 * person's name and key; the halves are ordered by name (then key), so both sides see the same string.
 */
export function safetyNumber(
  a: { name: string; publicKeyPem: string },
  b: { name: string; publicKeyPem: string },
): string {
  const parties = [a, b].map((party) => ({ name: party.name, spki: spkiDer(parsePublicKey(party.publicKeyPem)) }))
  parties.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : Buffer.compare(x.spki, y.spki)))
  return parties.map((party) => safetyHalf(party.name, party.spki)).join(' ')
}

/** Six groups of five digits from one person's name and key. */
function safetyHalf(name: string, spki: Buffer): string {
  const nameBytes = Buffer.from(name, 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(nameBytes.length)
  const digest = createHash('sha256').update('udsu-safety-v1').update(length).update(nameBytes).update(spki).digest()
  const groups: string[] = []
  // 5 bytes (40 bits) per group reduced mod 10^5: the bias is below 2^-23, as in Signal.
  for (let offset = 0; offset < 30; offset += 5) {
    const chunk = digest.readUIntBE(offset, 5)
    groups.push(String(chunk % 100000).padStart(5, '0'))
  }
  return groups.join(' ')
}

function parsePublicKey(pem: string): forge.pki.rsa.PublicKey {
  if (typeof pem !== 'string' || !/-----BEGIN [A-Z ]+-----/.test(pem)) {
    throw new KeyRejected('not a PEM public key (no "-----BEGIN PUBLIC KEY-----" block)')
  }
  const blocks = pemBlocks(pem)
  if (blocks.length !== 1) throw new KeyRejected(`expected one PEM block, found ${blocks.length}`)
  const type = blocks[0].type
  if (type !== 'PUBLIC KEY' && type !== 'RSA PUBLIC KEY') {
    throw new KeyRejected(`expected a "PUBLIC KEY" PEM block, found "${type}"`)
  }
  let key: forge.pki.PublicKey
  try {
    key = forge.pki.publicKeyFromPem(pem)
  } catch (error) {
    const text = errorText(error)
    if (/OID/i.test(text)) throw new KeyRejected('not an RSA key')
    throw new KeyRejected(`not a readable RSA public key (${text})`)
  }
  const rsa = key as forge.pki.rsa.PublicKey
  if (!rsa || !rsa.n || !rsa.e) throw new KeyRejected('not an RSA key')
  return rsa
}

function pemBlocks(pem: string): forge.pem.ObjectPEM[] {
  try {
    return forge.pem.decode(pem)
  } catch (error) {
    throw new KeyRejected(`not valid PEM (${errorText(error)})`)
  }
}

/** What makes a key unacceptable, or undefined if it is fine. */
function policyProblem(key: forge.pki.rsa.PublicKey): string | undefined {
  const exponent = key.e.toString(10)
  if (exponent !== String(REQUIRED_EXPONENT)) return `public exponent is ${exponent}; udsu accepts only 65537`
  const bits = key.n.bitLength()
  if (bits < MIN_RSA_BITS) return `RSA key is ${bits} bits; udsu needs at least ${MIN_RSA_BITS}`
  if (bits > MAX_RSA_BITS) return `RSA key is ${bits} bits; udsu accepts at most ${MAX_RSA_BITS}`
  return undefined
}

function spkiDer(key: forge.pki.rsa.PublicKey): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.publicKeyToAsn1(key)).getBytes(), 'binary')
}

function spkiSha256(key: forge.pki.rsa.PublicKey): Buffer {
  return createHash('sha256').update(spkiDer(key)).digest()
}

function formatFingerprint(digest: Buffer): string {
  return digest.toString('hex').match(/.{4}/g)!.join(' ')
}

/** forge writes CRLF line ends; LF is what node:crypto and openssl write, so keys compare equal as strings. */
function canonicalPublicPem(key: forge.pki.rsa.PublicKey): string {
  return forge.pki.publicKeyToPem(key).replace(/\r\n/g, '\n')
}

/**
 * Reads the key file, undefined if there is none. A symbolic link is refused (opened with O_NOFOLLOW): it could lead to
 * any file, whose mode we would then change. A readable key is made owner-only, as ssh insists.
 */
async function readKeyFile(file: string): Promise<string | undefined> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP')
      throw new Error(
        `${file} is a symbolic link; udsu does not follow links to its key: put the key file itself there`,
      )
    throw new Error(`cannot read ${file}: ${errorText(error)}`)
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw new Error(`${file} is not a regular file`)
    if ((stat.mode & 0o077) !== 0) await handle.chmod(0o600)
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
