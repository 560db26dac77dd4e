// The name book on its own, on a clock the test moves: bound after its owner leaves, released after the configured
// absence (not a moment before), by its owner, or to make room only from names past their release.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { tempDir } from '../../core/test/support'
import { NameBook } from '../names'

const DAY = 86_400_000

describe('server NameBook', () => {
  it('keeps a name for its key for releaseAfterMs after it was last seen, then lets another key have it', () => {
    const book = new NameBook({ releaseAfterMs: 90 * DAY })
    expect(book.claim('alice', 'KEY-A', 0).ok).to.equal(true)
    book.seen('alice', 'KEY-A', 10 * DAY)
    expect(book.claim('alice', 'KEY-M', 10 * DAY + 90 * DAY - 1)).to.deep.include({ ok: false, code: 'name_taken' })
    expect(book.claim('alice', 'KEY-A', 50 * DAY).ok, 'its owner, any time').to.equal(true)
    expect(book.claim('alice', 'KEY-M', 50 * DAY + 90 * DAY).ok).to.equal(true)
    expect(book.claim('alice', 'KEY-A', 50 * DAY + 90 * DAY).ok, 'now the other key owns it').to.equal(false)
  })

  it("releases a name to its owner's request only", () => {
    const book = new NameBook()
    book.claim('alice', 'KEY-A', 0)
    expect(book.release('alice', 'KEY-M')).to.equal(false)
    expect(book.claim('alice', 'KEY-M', 1).ok).to.equal(false)
    expect(book.release('ALICE', 'KEY-A'), 'by any of its forms').to.equal(true)
    expect(book.claim('alice', 'KEY-M', 2).ok).to.equal(true)
  })

  it('when full, makes room only from names past their release, else refuses new names with full', () => {
    const book = new NameBook({ releaseAfterMs: 10 * DAY, maxNames: 2 })
    book.claim('alice', 'A', 0)
    book.claim('bob', 'B', 5 * DAY)
    expect(book.claim('carol', 'C', 9 * DAY)).to.deep.include({ ok: false, code: 'full' })
    expect(book.claim('alice', 'A', 9 * DAY).ok, 'an owner is never refused').to.equal(true)
    expect(book.claim('carol', 'C', 15 * DAY).ok, 'bob is past his release').to.equal(true)
    expect(book.claim('bob', 'M', 15 * DAY).ok).to.equal(false) // full again, and alice is not past hers
    expect(book.size).to.equal(2)
  })

  it('survives a restart from its file, written 0600', () => {
    const file = path.join(tempDir(), 'names.json')
    const book = new NameBook({ file })
    book.claim('аlice', 'KEY-A', 0)
    book.save()
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600)
    const again = new NameBook({ file })
    expect(again.claim('alice', 'KEY-M', 1)).to.deep.include({ ok: false, code: 'name_taken' })
  })
})
