// The server's long-term signing key: Ed25519, kept in its data directory (created 0700, the key 0600), so clients that
// pinned it on first use recognise the same server after a restart.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const SERVER_KEY_FILE = 'server-key.pem'

/**
 * Where a server on this machine keeps its key by default: $XDG_DATA_HOME/udsu-server/port-PORT (else under
 * ~/.local/share), one per port, so `udsu server` and a client's embedded server on the same port are the same server
 * to clients that pinned it.
 */
export function defaultServerDataDir(port: number): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share')
  return path.join(base, 'udsu-server', `port-${port}`)
}

/** The key in `dataDir` (made on first start); without a directory, a new key that lives as long as the process. */
export function loadServerKey(dataDir?: string): KeyObject {
  if (dataDir === undefined) return generateKeyPairSync('ed25519').privateKey
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(dataDir, SERVER_KEY_FILE)
  let pem: string
  try {
    // O_NOFOLLOW: a symlink planted in the data directory must not make us read (or later chmod) another file.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    try {
      pem = fs.readFileSync(fd, 'utf8')
    } finally {
      fs.closeSync(fd)
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`cannot read the server key ${file}: ${(error as Error).message}`)
    const key = generateKeyPairSync('ed25519').privateKey
    // 'wx': never overwrite a key another server process wrote meanwhile.
    fs.writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
    return key
  }
  const key = createPrivateKey(pem)
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is not an Ed25519 private key`)
  return key
}
