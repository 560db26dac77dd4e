// Unit tests of the TUI's pure parts: sanitising, widths, the line editor, the model, formatting, settings.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { DEFAULT_CONFIG } from '../../../core/config'
import { Profile } from '../../../core/profile'
import { LineEditor, NEWLINE_MARK } from '../editor'
import { formatContact, formatConversation, formatEntry, formatStatus, senderColour, themeFromEnv } from '../format'
import { ChatModel } from '../model'
import { displayWidth, fit, plainName, safe, safeLine, stripControls } from '../sanitize'
import { loadRemembered, prefill, REMEMBERED_FILE, saveRemembered, validateSettings } from '../settings'

const colour = { colour: true }
const plain = { colour: false }

describe('tui: sanitising peer text', () => {
  it('removes C0 and C1 controls but keeps newlines', () => {
    expect(stripControls('a\u001b[2Jb\u001b]0;pwned\u0007c\u009bd\u0000e\nf')).to.equal('a[2Jb]0;pwnedcd' + 'e\nf')
  })

  it('turns CR and CRLF into newlines, tabs into spaces, lone surrogates into U+FFFD', () => {
    expect(stripControls('a\r\nb\rc\td\ud800')).to.equal('a\nb\nc  d\ufffd')
  })

  it('removes zero-width characters and bidi marks that hide or reorder text, keeping joiners inside emoji and words', () => {
    for (const hidden of ['\u200b', '\u200e', '\u200f', '\u061c', '\ufeff', '\u202a', '\u202e', '\u2066', '\u2069']) {
      expect(stripControls(`pay${hidden} alice${hidden}`), `U+${hidden.codePointAt(0)!.toString(16)}`).to.equal(
        'pay alice',
      )
    }
    expect(stripControls('\u200dalice\u200c \u200d')).to.equal('alice ')
    expect(stripControls('👩\u200d💻 می\u200cخواهم')).to.equal('👩\u200d💻 می\u200cخواهم')
    expect(plainName('al\u200dice\u200b')).to.equal('alice')
  })

  it('removes bidi overrides that could reorder what a reader sees', () => {
    expect(stripControls('abc\u202edef\u2066')).to.equal('abcdef')
  })

  it('escapes blessed tags so that braces show literally', () => {
    expect(safe('{red-fg}x{/red-fg}')).to.equal('{open}red-fg{close}x{open}/red-fg{close}')
    expect(safeLine('a\nb{bold}')).to.equal('a b{open}bold{close}')
  })

  it('keeps Cyrillic, CJK and emoji intact', () => {
    expect(safe('Привет 你好 👋')).to.equal('Привет 你好 👋')
  })
})

describe('tui: display widths', () => {
  it('counts CJK and emoji as two columns, like the terminal', () => {
    expect(displayWidth('abc')).to.equal(3)
    expect(displayWidth('Ж')).to.equal(1)
    expect(displayWidth('你好')).to.equal(4)
    expect(displayWidth('👋🎉')).to.equal(4)
  })

  it('cuts by columns without splitting a character', () => {
    expect(fit('hello world', 6)).to.equal('hello…')
    expect(fit('你好你好', 5)).to.equal('你好…')
    expect(fit('👋👋👋', 4)).to.equal('👋…')
    expect(fit('short', 10)).to.equal('short')
  })
})

describe('tui: line editor', () => {
  it('inserts at the cursor and moves by whole characters', () => {
    const e = new LineEditor()
    e.insert('a👋b')
    e.left()
    e.left()
    expect(e.cursor).to.equal(1)
    e.delete()
    expect(e.text).to.equal('ab')
    e.end()
    e.backspace()
    expect(e.text).to.equal('a')
  })

  it('joins an emoji that arrives as two UTF-16 halves', () => {
    const e = new LineEditor()
    for (const unit of '🎉'.split('')) e.insert(unit)
    expect(e.text).to.equal('🎉')
    e.backspace()
    expect(e.text).to.equal('')
  })

  it('kills words and the line start', () => {
    const e = new LineEditor('hello big world')
    e.killWord()
    expect(e.text).to.equal('hello big ')
    e.killToStart()
    expect(e.text).to.equal('')
  })

  it('walks the history and keeps the draft', () => {
    const e = new LineEditor()
    e.insert('one')
    e.submit()
    e.insert('two')
    e.submit()
    e.insert('draft')
    e.previous()
    expect(e.text).to.equal('two')
    e.previous()
    e.previous()
    expect(e.text).to.equal('one')
    e.next()
    e.next()
    expect(e.text).to.equal('draft')
  })

  it('replaces a selected prefilled value with what is typed, as a browser field does', () => {
    const typed = new LineEditor('alice')
    typed.selectAll()
    expect(typed.view(20)).to.deep.include({ text: 'alice', selected: true })
    typed.insert('b')
    typed.insert('ob')
    expect(typed.text).to.equal('bob')
    expect(typed.selected).to.equal(false)

    const erased = new LineEditor('alice')
    erased.selectAll()
    erased.backspace()
    expect(erased.text).to.equal('')

    // A moving key ends the selection and keeps the text: typing then edits it.
    const kept = new LineEditor('127.0.0.1:7777')
    kept.selectAll()
    kept.left()
    expect(kept.cursor).to.equal(0)
    kept.end()
    kept.insert('8')
    expect(kept.text).to.equal('127.0.0.1:77778')

    const empty = new LineEditor('')
    empty.selectAll()
    expect(empty.selected).to.equal(false)
  })

  it('shows a window around the cursor, newlines as a mark', () => {
    const e = new LineEditor('line one\nline two')
    const view = e.view(10)
    expect(view.text).to.equal(`${NEWLINE_MARK}line two`)
    expect(view.cursor).to.equal(9)
    e.home()
    expect(e.view(10)).to.deep.equal({ text: 'line one⏎l', cursor: 0, selected: false })
  })
})

describe('tui: chat model', () => {
  const message = (from: string, to: string, id: string, text = 'hi') => ({ id, from, to, text, ts: 0 })

  it('counts unread messages of conversations not on screen, and clears them on open', () => {
    const m = new ChatModel('alice')
    m.open('bob')
    m.addIncoming(message('bob', 'alice', 'a1'))
    m.addIncoming(message('carol', 'alice', 'a2'))
    m.addIncoming(message('carol', 'alice', 'a3'))
    expect(m.contact('bob')?.unread).to.equal(0)
    expect(m.contact('carol')?.unread).to.equal(2)
    expect(m.unreadElsewhere().map((c) => c.name)).to.deep.equal(['carol'])
    m.open('carol')
    expect(m.contact('carol')?.unread).to.equal(0)
  })

  it('cycles and selects contacts in name order, never listing oneself', () => {
    const m = new ChatModel('alice')
    m.updatePeers([
      { name: 'carol', online: true },
      { name: 'alice', online: true },
      { name: 'bob', online: false },
    ])
    expect(m.contactList().map((c) => c.name)).to.deep.equal(['bob', 'carol'])
    m.cycle(1)
    expect(m.current).to.equal('bob')
    m.cycle(1)
    expect(m.current).to.equal('carol')
    m.cycle(1)
    expect(m.current).to.equal('bob')
    m.cycle(-1)
    expect(m.current).to.equal('carol')
    m.select(1)
    expect(m.current).to.equal('bob')
    m.select(9)
    expect(m.current).to.equal('bob')
  })

  it('marks peers missing from a fresh list as offline', () => {
    const m = new ChatModel('alice')
    m.updatePeers([{ name: 'bob', online: true, path: 'direct' }])
    m.updatePeers([])
    expect(m.contact('bob')).to.include({ online: false, path: undefined })
  })

  it('keeps a delivery state that arrives before the message itself', () => {
    const m = new ChatModel('alice')
    m.setDelivery({ id: 'x1', to: 'bob', state: 'pending' })
    m.setDelivery({ id: 'x1', to: 'bob', state: 'sent' })
    m.addOwn(message('alice', 'bob', 'x1'))
    expect(m.delivery('x1')?.state).to.equal('sent')
    m.setDelivery({ id: 'x1', to: 'bob', state: 'failed', reason: 'timeout' })
    expect(m.status.lastError).to.equal('message to bob failed: timeout')
  })

  it('keeps at most `limit` entries per conversation', () => {
    const m = new ChatModel('alice', 3)
    for (let i = 0; i < 5; i++) m.addIncoming(message('bob', 'alice', `m${i}`, `t${i}`))
    expect(m.entries('bob').map((e) => e.text)).to.deep.equal(['t2', 't3', 't4'])
  })

  it('puts notices in the named conversation, else the current one, else home', () => {
    const m = new ChatModel('alice')
    m.notice('at home')
    m.open('bob')
    m.notice('for carol, who has no conversation')
    expect(m.entries(undefined).map((e) => e.text)).to.deep.equal(['at home'])
    expect(m.entries('bob').map((e) => e.text)).to.deep.equal(['for carol, who has no conversation'])
  })
})

describe('tui: formatting', () => {
  it('shows own messages with their delivery mark', () => {
    const entry = {
      kind: 'message' as const,
      id: 'a',
      from: 'alice',
      text: 'hi',
      ts: new Date(2024, 0, 1, 9, 5).getTime(),
      own: true,
    }
    expect(formatEntry(entry, plain, { state: 'sent' })).to.deep.equal(['09:05 {bold}alice{/bold}: hi ✓'])
    expect(formatEntry(entry, plain, { state: 'delivered' })[0]).to.match(/✓✓$/)
    expect(formatEntry(entry, plain, undefined)[0]).to.match(/○$/)
    expect(formatEntry(entry, plain, { state: 'failed', reason: 'no path' })[0]).to.match(/✗ no path$/)
  })

  it('puts a date line before the first entry of each local day', () => {
    const at = (day: number, hour: number, minute: number) => new Date(2026, 10, day, hour, minute).getTime()
    const message = (id: string, ts: number) => ({
      kind: 'message' as const,
      id,
      from: 'bob',
      text: id,
      ts,
      own: false,
    })
    const entries = [message('late', at(24, 23, 58)), message('later', at(24, 23, 59)), message('next', at(25, 0, 1))]
    expect(formatConversation(entries, plain, () => undefined)).to.deep.equal([
      '── Tue 24 Nov 2026 ──',
      '23:58 bob: late',
      '23:59 bob: later',
      '── Wed 25 Nov 2026 ──',
      '00:01 bob: next',
    ])
    expect(formatConversation([], plain, () => undefined)).to.deep.equal([])
  })

  it('indents the continuation lines of a multi-line message and escapes peer text', () => {
    const entry = {
      kind: 'message' as const,
      id: 'a',
      from: 'bob',
      text: 'one\n{red-fg}two\u001b[2J',
      ts: 0,
      own: false,
    }
    const lines = formatEntry(entry, plain)
    expect(lines[1]).to.equal('           {open}red-fg{close}two[2J')
  })

  it('colours senders steadily, and not at all without colour', () => {
    expect(senderColour('bob')).to.equal(senderColour('bob'))
    const entry = { kind: 'message' as const, id: 'a', from: 'bob', text: 'x', ts: 0, own: false }
    expect(formatEntry(entry, colour)[0]).to.include(`{${senderColour('bob')}-fg}bob`)
    expect(formatEntry(entry, plain)[0]).to.not.match(/-fg\}/)
  })

  it('follows NO_COLOR', () => {
    expect(themeFromEnv({ NO_COLOR: '1' }).colour).to.equal(false)
    expect(themeFromEnv({}).colour).to.equal(true)
  })

  it('draws a contact with its Alt+N key, online dot and unread count in the given width', () => {
    const row = formatContact({ name: 'carol', online: true, unread: 3 }, 2, false, 16, plain)
    expect(row).to.equal('{bold}2 ● carol (3)   {/bold}')
  })

  it('puts server, path and the last error in the status bar', () => {
    const status = { server: { online: true, server: '127.0.0.1:7777' }, lastError: 'oops {x}' }
    const text = formatStatus(status, { name: 'bob', online: true, path: 'relay', unread: 0 }, 200)
    expect(text).to.equal(' server 127.0.0.1:7777 online │ bob: relay │ ✗ oops {open}x{close}')
  })
})

describe('tui: remembered settings', () => {
  let dir: string
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-tui-'))))
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('saves name and server in a private file and reads them back', () => {
    const folder = new Profile(path.join(dir, 'udsu'))
    saveRemembered({ name: 'алиса', server: 'example.org:7777' }, folder)
    expect(fs.statSync(folder.path(REMEMBERED_FILE)).mode & 0o777).to.equal(0o600)
    expect(loadRemembered(folder).settings).to.deep.equal({ name: 'алиса', server: 'example.org:7777' })
  })

  it('ignores a broken file and says why', () => {
    const folder = new Profile(dir)
    fs.writeFileSync(folder.path(REMEMBERED_FILE), '{not json')
    const loaded = loadRemembered(folder)
    expect(loaded.settings).to.deep.equal({})
    expect(loaded.problem).to.match(/not valid JSON/)
  })

  it('prefers given values, except the built-in default server', () => {
    const remembered = { name: 'old', server: '10.0.0.1:9000' }
    expect(prefill({ name: 'new', server: '1.2.3.4:5' }, remembered)).to.deep.equal({
      name: 'new',
      server: '1.2.3.4:5',
    })
    expect(prefill({ name: '', server: DEFAULT_CONFIG.server }, remembered)).to.deep.equal(remembered)
    expect(prefill({ name: '', server: DEFAULT_CONFIG.server }, {})).to.deep.equal({
      name: '',
      server: DEFAULT_CONFIG.server,
    })
  })

  it('does not offer a remembered name whose profile is in use right now', () => {
    const remembered = { name: 'alice', server: '10.0.0.1:9000' }
    const aliceRuns = (name: string) => name === 'alice'
    expect(prefill({ name: '', server: DEFAULT_CONFIG.server }, remembered, aliceRuns)).to.deep.equal({
      name: '',
      server: '10.0.0.1:9000',
    })
    expect(prefill({ name: '', server: DEFAULT_CONFIG.server }, remembered, () => false)).to.deep.equal(remembered)
    // A name asked for with --name is kept: the profile lock then says plainly that it is in use.
    expect(prefill({ name: 'alice', server: DEFAULT_CONFIG.server }, remembered, aliceRuns).name).to.equal('alice')
  })

  it("knows a profile is in use from its lock's live holder", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-holder-'))
    try {
      const profile = new Profile(dir)
      expect(profile.holder()).to.equal(undefined)
      profile.lock()
      expect(profile.holder()).to.equal(process.pid)
      profile.unlock()
      expect(profile.holder()).to.equal(undefined)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('validates the name and the server address', () => {
    expect(validateSettings({ name: 'Алиса_1', server: 'host:1' })).to.deep.equal({})
    const problems = validateSettings({ name: 'a b', server: 'nohost' })
    expect(problems.name).to.match(/letters, digits/)
    expect(problems.server).to.match(/host:port/)
    expect(validateSettings({ name: '', server: 'h:1' }).name).to.equal('a name is needed')
  })
})
