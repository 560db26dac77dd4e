// A sealed export: scrypt turns the passphrase into a key, AES-256-GCM encrypts and authenticates the whole file.
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'

export const SEALED_FORMAT = 'udsu-history-sealed'
/** scrypt cost: N 2^15, r 8, p 1 (about 32 MiB and a tenth of a second: OWASP's floor for scrypt). */
const KDF = { N: 1 << 15, r: 8, p: 1 }
const MAX_KDF_N = 1 << 20

interface SealedFile {
  format: typeof SEALED_FORMAT
  version: 1
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string }
  cipher: 'aes-256-gcm'
  iv: string
  tag: string
  data: string
}

function key(passphrase: string, salt: Buffer, params: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase.normalize('NFC'), salt, 32, {
    ...params,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  })
}

/** The file's bytes sealed with the passphrase, as a small JSON document (base64 inside). */
export function seal(plaintext: Buffer, passphrase: string): string {
  if (!passphrase) throw new Error('the passphrase is empty')
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key(passphrase, salt, KDF), iv)
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()])
  const sealed: SealedFile = {
    format: SEALED_FORMAT,
    version: 1,
    kdf: { name: 'scrypt', ...KDF, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  }
  return JSON.stringify(sealed) + '\n'
}

/** True when a parsed document is a sealed export. */
export function isSealed(document: unknown): boolean {
  return (
    typeof document === 'object' && document !== null && (document as { format?: unknown }).format === SEALED_FORMAT
  )
}

/** The plaintext of a sealed export; a wrong passphrase or a changed byte gives one clear error (GCM cannot tell them apart). */
export function unseal(document: unknown, passphrase: string): Buffer {
  const sealed = document as Partial<SealedFile>
  const kdf = sealed.kdf
  const b64 = (value: unknown, what: string) => {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
      throw new Error(`the sealed file's ${what} is not base64`)
    return Buffer.from(value, 'base64')
  }
  if (sealed.version !== 1)
    throw new Error(`sealed export version ${String(sealed.version)} is not known; this udsu reads version 1`)
  if (
    !kdf ||
    kdf.name !== 'scrypt' ||
    !Number.isInteger(kdf.N) ||
    kdf.N < 2 ||
    kdf.N > MAX_KDF_N ||
    (kdf.N & (kdf.N - 1)) !== 0 ||
    kdf.r !== 8 ||
    kdf.p !== 1
  ) {
    throw new Error('the sealed file has unknown or unsafe key-derivation parameters')
  }
  if (sealed.cipher !== 'aes-256-gcm')
    throw new Error(`the sealed file's cipher "${String(sealed.cipher)}" is not known`)
  const decipher = createDecipheriv('aes-256-gcm', key(passphrase, b64(kdf.salt, 'salt'), kdf), b64(sealed.iv, 'iv'))
  decipher.setAuthTag(b64(sealed.tag, 'tag'))
  try {
    return Buffer.concat([decipher.update(b64(sealed.data, 'data')), decipher.final()])
  } catch {
    throw new Error('cannot open the sealed export: wrong passphrase, or the file was changed')
  }
}
