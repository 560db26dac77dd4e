// Pre-generated keys for the rsa tests (see test/fixtures/keys/make-keys.ts): no test waits for key generation.
import { existsSync, readFileSync } from 'node:fs'
import * as path from 'node:path'
import { identityFromPem, type RsaIdentity } from '../identity'

export type FixtureName = 'alice' | 'bob' | 'carol' | 'dave'

const KEYS_SUBDIR = path.join('test', 'fixtures', 'keys')

/** The keys live in the source tree; compiled tests run from dist/, so look upwards rather than relative to this file. */
function findKeysDir(): string {
  for (const start of [__dirname, process.cwd()]) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, KEYS_SUBDIR)
      if (existsSync(path.join(candidate, 'alice.pem'))) return candidate
      if (path.dirname(dir) === dir) break
    }
  }
  throw new Error(`cannot find ${KEYS_SUBDIR}/alice.pem above ${__dirname} or ${process.cwd()}`)
}

export const FIXTURE_KEYS_DIR = findKeysDir()

const cache = new Map<string, RsaIdentity>()

export function fixturePath(file: string): string {
  return path.join(FIXTURE_KEYS_DIR, file)
}

export function fixturePem(file: string): string {
  return readFileSync(fixturePath(file), 'utf8')
}

export function fixtureIdentity(name: FixtureName): RsaIdentity {
  let identity = cache.get(name)
  if (identity === undefined) {
    identity = identityFromPem(fixturePem(`${name}.pem`), fixturePath(`${name}.pem`))
    cache.set(name, identity)
  }
  return identity
}
