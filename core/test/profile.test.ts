// A profile left readable by others (an older version, a copy, an unpacked archive) is made private at start, and a
// symbolic link in it never has its target's mode changed; a symlinked key file is refused outright.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Profile } from '../profile'
import { loadOrCreateIdentity } from '../../plugins/rsa/identity'

const mode = (file: string) => fs.lstatSync(file).mode & 0o777

describe('profile: private files', () => {
  const made: string[] = []
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-profile-'))
    made.push(dir)
    return dir
  }
  after(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

  it('tightens a loose profile to 0700 and each file in it to 0600, leaving a link’s target alone', () => {
    const outside = tempDir()
    const target = path.join(outside, 'not-yours.txt')
    fs.writeFileSync(target, 'x', { mode: 0o644 })
    fs.chmodSync(target, 0o644)
    const dir = path.join(tempDir(), 'alice')
    fs.mkdirSync(dir, { mode: 0o755 })
    fs.chmodSync(dir, 0o755)
    for (const name of ['known-peers.json', 'reliable-inbox.log', 'udsu.log']) {
      fs.writeFileSync(path.join(dir, name), '{}')
      fs.chmodSync(path.join(dir, name), 0o644)
    }
    fs.symlinkSync(target, path.join(dir, 'link'))

    const profile = new Profile(dir)
    profile.lock()
    profile.unlock()

    expect(mode(dir)).to.equal(0o700)
    for (const name of ['known-peers.json', 'reliable-inbox.log', 'udsu.log'])
      expect(mode(path.join(dir, name)), name).to.equal(0o600)
    expect(mode(target)).to.equal(0o644)
    expect(fs.lstatSync(path.join(dir, 'link')).isSymbolicLink()).to.equal(true)
  })

  it('refuses a symbolic link as the identity key, and changes nothing it points to', async () => {
    const outside = tempDir()
    const target = path.join(outside, 'key.pem')
    fs.copyFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'keys', 'alice.pem'), target)
    fs.chmodSync(target, 0o644)
    const dir = tempDir()
    fs.symlinkSync(target, path.join(dir, 'identity.pem'))

    let refused: unknown
    await loadOrCreateIdentity(dir).catch((error: unknown) => (refused = error))
    expect(String(refused)).to.match(/identity\.pem is a symbolic link; udsu does not follow links/)
    expect(mode(target)).to.equal(0o644)
  })

  it('makes a readable key file owner-only before using it', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'identity.pem')
    fs.copyFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'keys', 'alice.pem'), file)
    fs.chmodSync(file, 0o644)
    await loadOrCreateIdentity(dir)
    expect(mode(file)).to.equal(0o600)
  })
})
