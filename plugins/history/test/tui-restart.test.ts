// The terminal UI in tmux after a restart: yesterday's conversation (imported with `udsu history import`) and today's
// chat come back from history, with unread counts; PgUp loads older pages; /search highlights what matched.
import { expect } from 'chai'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  CLI,
  cleanupTemp,
  fixtureProfile,
  HeadlessClient,
  ROOT,
  ServerProcess,
  tempDir,
} from '../../../test/support/processes'
import { formatDay } from '../../../frontends/tui/format'
import { Tmux } from '../../../frontends/tui/test/tmux'

const YESTERDAY_MESSAGES = 60

describe('history in the terminal UI across a restart (tmux)', function () {
  this.timeout(90_000)
  const tmux = new Tmux()
  let server: ServerProcess
  let bob: HeadlessClient
  after(() => {
    tmux.kill()
    bob?.kill()
    server?.kill()
    cleanupTemp()
  })

  it("shows yesterday's conversation and today's unread message after a restart", async () => {
    server = await ServerProcess.start()
    const profile = fixtureProfile('alice')
    const xdg = tempDir()
    const yesterday = Date.now() - 24 * 3600 * 1000
    const file = path.join(tempDir(), 'yesterday.json')
    const messages = Array.from({ length: YESTERDAY_MESSAGES }, (_, i) => {
      const at = new Date(yesterday - (YESTERDAY_MESSAGES - i) * 60_000).toISOString()
      const out = i % 2 === 1
      return {
        id: `y${i}`,
        peer: 'carol',
        from: out ? 'alice' : 'carol',
        to: out ? 'carol' : 'alice',
        out,
        ...(out ? { state: 'delivered' } : {}),
        text: `yesterday ${i} Ёжик`,
        sent: at,
        received: at,
      }
    })
    fs.writeFileSync(
      file,
      JSON.stringify({
        format: 'udsu-history',
        version: 1,
        owner: 'alice',
        exported: new Date().toISOString(),
        messages,
      }),
    )
    const imported = spawnSync(process.execPath, [CLI, 'history', 'import', file, '--profile', profile], {
      encoding: 'utf8',
    })
    expect(imported.stdout).to.match(/60 added/)

    const startTui = (session: string) => {
      tmux.start(session, `node ${CLI} --frontend tui --name alice --server ${server.address} --profile ${profile}`, {
        width: 90,
        height: 24,
        cwd: ROOT,
        env: { XDG_DATA_HOME: xdg },
      })
    }
    startTui('before')
    await tmux.waitFor('before', /Rendezvous server/, 'the start screen')
    tmux.keys('before', 'Enter')
    await tmux.waitFor('before', /server \S+ online/, 'the server online')
    bob = await HeadlessClient.start({ name: 'bob', server: server.address })
    bob.send({ type: 'send', to: 'alice', text: 'today from bob' })
    await bob.waitFor((e) => e.type === 'delivered', "bob's message delivered")
    await tmux.waitFor('before', /● bob \(1\)/, 'one unread from bob')
    tmux.keys('before', 'C-c')
    expect(await tmux.waitForExit('before')).to.equal(0)

    // The same profile in a new process and a new terminal.
    startTui('alice')
    await tmux.waitFor('alice', /Rendezvous server/, 'the start screen again')
    tmux.keys('alice', 'Enter')
    // The unread count came back from history, before anyone is online to list.
    await tmux.waitFor('alice', /bob \(1\)/, 'the unread count after the restart')
    tmux.type('alice', '/open carol')
    tmux.keys('alice', 'Enter')
    await tmux.waitFor(
      'alice',
      new RegExp(`alice: yesterday ${YESTERDAY_MESSAGES - 1} Ёжик ✓✓`),
      "yesterday's last message, delivered",
    )
    // 50 messages come at start; PgUp past the top brings the 10 before them, and the day line of yesterday.
    const day = `── ${formatDay(yesterday - YESTERDAY_MESSAGES * 60_000)} ──`
    for (let press = 0; press < 6 && !tmux.capture('alice').includes('carol: yesterday 0 Ёжик'); press++) {
      tmux.keys('alice', 'PPage')
      await tmux.waitFor('alice', /PgDn for newer/, 'scrolled back')
    }
    const top = await tmux.waitFor('alice', /carol: yesterday 0 Ёжик/, 'the oldest message after PgUp')
    expect(top).to.include(day)

    tmux.type('alice', '/open bob')
    tmux.keys('alice', 'Enter')
    await tmux.waitFor('alice', /bob: today from bob/, "today's message from bob")
    expect(tmux.capture('alice')).to.not.match(/bob \(1\)/)

    tmux.type('alice', '/search ежик 59')
    tmux.keys('alice', 'Enter')
    const screen = await tmux.waitFor('alice', /1 message\(s\) contain ежик 59/, 'the search results')
    expect(screen).to.match(/⌕ carol · alice: yesterday 59 Ёжик/)
    // The matched word is drawn highlighted (black on yellow), the rest not.
    expect(tmux.capture('alice', true)).to.match(/\x1b\[[\d;]*43m\x1b?\[?[\d;]*m?Ёжик/)
  })
})
