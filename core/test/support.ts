// Shared by the core and server tests: the repository root, fixture keys and temp dirs, the same from source or dist/.
import { createPublicKey, sign } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ChannelEnd, ephemeralKey, HELLO_PAD, PSS, registrationProof, type Transcript } from '../../protocol'

/** The directory holding package.json, found by walking up, so it is the same under tsx and from dist/. */
export const ROOT = (() => {
  let dir = __dirname
  for (let i = 0; i < 20 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
  if (!fs.existsSync(path.join(dir, 'package.json'))) throw new Error(`no package.json above ${__dirname}`)
  return dir
})()

export const FIXTURE_KEYS = path.join(ROOT, 'test', 'fixtures', 'keys')

/** The SPKI public PEM of a fixture private key (alice, bob, carol, dave, weak-1024, e3-2048). */
export function publicPem(name: string): string {
  const key = createPublicKey(fs.readFileSync(path.join(FIXTURE_KEYS, `${name}.pem`)))
  return key.export({ type: 'spki', format: 'pem' }).toString()
}

const temps: string[] = []

/** A fresh directory under the system temp dir; `removeTempDirs()` deletes every one made. */
export function tempDir(prefix = 'udsu-core-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  temps.push(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
}

/** Writes files (relative path → text) under `dir`, creating folders. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), text)
  }
}

/** The error a promise rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/** The error a function throws; fails if it returns. */
export function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an exception, but none was thrown')
}

/** The fixture private key (PEM) whose public half is `publicKey`, for tests that must sign as that key's owner. */
export function privatePemFor(publicKey: string): string {
  for (const file of fs.readdirSync(FIXTURE_KEYS).filter((f) => f.endsWith('.pem'))) {
    const pem = fs.readFileSync(path.join(FIXTURE_KEYS, file), 'utf8')
    if (createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString() === publicKey) return pem
  }
  throw new Error('no fixture private key for that public key')
}

/**
 * Registers at a rendezvous server the way a client does: hello → cookie, register → challenge, prove (sealed) → registered.
 * `request` sends one message with a fresh rid and resolves with its reply; the first reply that is not the expected
 * next step (an error) is returned as it is. `onChannel` gets the channel's client end before the proof goes out, so
 * the caller can open the sealed `registered` (and seal everything after it).
 */
export async function admit(
  request: (message: { t: string; [field: string]: unknown }) => Promise<{ t: string; [field: string]: unknown }>,
  registration: { name: string; key: string; local?: unknown[]; nat?: string },
  onChannel: (channel: ChannelEnd) => void = () => undefined,
): Promise<{ t: string; [field: string]: unknown }> {
  const cookie = await request({ t: 'hello', pad: HELLO_PAD })
  if (cookie.t !== 'cookie') return cookie
  const eph = ephemeralKey()
  const { local = [], nat, ...identity } = registration
  const challenge = await request({ t: 'register', ...identity, cookie: cookie.cookie, eph: eph.public })
  if (challenge.t !== 'challenge') return challenge
  const transcript = challengeTranscript(challenge, registration, eph.public)
  onChannel(ChannelEnd.derive('client', eph, transcript.serverEph, transcript)!)
  // The proof goes sealed under that channel (the caller's `request` seals whatever is not a clear step), with the LAN
  // endpoints and NAT type the clear `register` no longer carries.
  return request({
    t: 'prove',
    local,
    ...(nat ? { nat } : {}),
    sig: sign('sha256', registrationProof(transcript), { key: privatePemFor(registration.key), ...PSS }).toString(
      'base64',
    ),
  })
}

/** The transcript a challenge sets, as the client of `registration` sees it. */
export function challengeTranscript(
  challenge: { [field: string]: unknown },
  registration: { name: string; key: string },
  clientEph: string,
): Transcript {
  return {
    nonce: challenge.nonce as string,
    name: registration.name,
    clientKey: registration.key,
    clientEph,
    serverEph: challenge.eph as string,
    serverKey: challenge.skey as string,
  }
}
