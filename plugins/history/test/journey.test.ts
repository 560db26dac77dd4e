// Real processes on loopback: clients chat, are killed with SIGKILL mid-burst or mid-import, start again on the same
// profile, and their history holds everything acknowledged, once, while nothing is shown twice.
import { expect } from 'chai'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  CLI,
  cleanupTemp,
  fixtureProfile,
  HeadlessClient,
  ServerProcess,
  tempDir,
  writeConfig,
  type Event,
} from '../../../test/support/processes'
import { HISTORY_FILE, SqliteHistoryStore } from '../store'

/** Reliable delivery and history, short keepalive and retry so a lost peer is noticed quickly. */
const historyConfig = () =>
  writeConfig({
    plugins: [
      'udp',
      { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: 500 } },
      'rsa',
      { resolve: 'reliable', options: { retryMaxMs: 1000 } },
      'history',
    ],
  })

const BURST = 600

/** Asks a headless client for a conversation's history and returns its messages. */
async function historyOf(client: HeadlessClient, peer: string, limit = 1000): Promise<Event[]> {
  const from = client.lines.length
  client.send({ type: 'history', peer, limit })
  const answer = await client.waitFor(
    (e) => e.type === 'history' || e.type === 'error',
    `${client.name}'s history with ${peer}`,
    15_000,
    from,
  )
  if (answer.type === 'error') throw new Error(String(answer.message))
  return answer.messages as Event[]
}

/** Runs `udsu history …` to its end; its output and status. */
function udsuHistory(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, 'history', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('history with real clients (processes on loopback)', function () {
  this.timeout(120_000)
  const running: Array<{ kill(): void }> = []
  const track = <T extends { kill(): void }>(p: T): T => (running.push(p), p)
  let config: string
  let server: ServerProcess
  before(() => (config = historyConfig()))
  beforeEach(async () => (server = track(await ServerProcess.start())))
  afterEach(() => running.splice(0).forEach((p) => p.kill()))
  after(cleanupTemp)

  const start = (name: string, profile: string) =>
    HeadlessClient.start({ name, server: server.address, profile, config }).then(track)

  it('keeps both sides of a conversation, with delivery states, across a restart', async () => {
    const aliceProfile = fixtureProfile('alice')
    let alice = await start('alice', aliceProfile)
    const bob = await start('bob', fixtureProfile('bob'))
    alice.send({ type: 'send', to: 'bob', text: 'Привет, Боб! 東京 🎉' })
    await bob.message('Привет, Боб! 東京 🎉')
    bob.send({ type: 'send', to: 'alice', text: 'hi alice' })
    await alice.message('hi alice')
    await alice.waitFor((e) => e.type === 'delivered', 'the receipt')
    expect(await alice.quit()).to.equal(0)

    alice = await start('alice', aliceProfile)
    const messages = await historyOf(alice, 'bob')
    expect(messages.map(({ from, text, out, state }) => ({ from, text, out, state }))).to.deep.equal([
      { from: 'alice', text: 'Привет, Боб! 東京 🎉', out: true, state: 'delivered' },
      { from: 'bob', text: 'hi alice', out: false, state: undefined },
    ])
    alice.send({ type: 'search', query: '東京' })
    const search = await alice.waitFor((e) => e.type === 'search', 'search results')
    expect((search.results as Event[]).map((r) => [r.peer, r.text, r.matches])).to.deep.equal([
      ['bob', 'Привет, Боб! 東京 🎉', [[13, 15]]],
    ])

    // The slash commands, through the headless frontend: relative files are in the profile.
    const command = async (line: string) => {
      const from = alice.lines.length
      alice.send({ type: 'command', line })
      return alice.waitFor((e) => e.type === 'info' || e.type === 'error', line, 15_000, from)
    }
    expect(String((await command('/search боб')).text)).to.match(
      /^bob · \d{4}-\d{2}-\d{2} \d{2}:\d{2} alice: Привет, «Боб»! 東京 🎉$/,
    )
    expect(await command('/export backup.json')).to.deep.equal({
      type: 'info',
      text: `exported 2 message(s) to ${path.join(aliceProfile, 'backup.json')}`,
    })
    expect(await command('/import backup.json')).to.deep.equal({
      type: 'info',
      text: 'imported: 0 added, 2 already there, 0 refused',
    })
    expect((await command('/import missing.json')).type).to.equal('error')
  })

  it('receiver killed (SIGKILL) mid-burst and restarted: history has every message once, in order; none is shown twice', async () => {
    const bobProfile = fixtureProfile('bob')
    const alice = await start('alice', fixtureProfile('alice'))
    const bob1 = await start('bob', bobProfile)
    const texts = Array.from({ length: BURST }, (_, i) => `burst ${i}`)
    alice.child.stdin.write(texts.map((text) => JSON.stringify({ type: 'send', to: 'bob', text })).join('\n') + '\n')
    await bob1.message('burst 99')
    bob1.kill()
    await bob1.exited
    const shownBefore = bob1.messages()
    expect(shownBefore.length, 'the kill came mid-burst').to.be.below(BURST)

    const bob2 = await start('bob', bobProfile)
    await alice.waitFor(
      (e) =>
        e.type === 'pending' && e.id !== undefined && alice.lines.filter((l) => l.type === 'pending').length === BURST,
      'every message accepted',
    )
    const ids = alice.lines.filter((e) => e.type === 'pending').map((e) => String(e.id))
    await alice.waitFor((e) => e.type === 'delivered' && e.id === ids[ids.length - 1], 'the last receipt', 60_000)

    // Acknowledged means stored: every message alice saw delivered is in bob's history, once, in order.
    const stored = await historyOf(bob2, 'alice')
    expect(stored.map((m) => m.text)).to.deep.equal(texts)
    expect(new Set(stored.map((m) => m.id)).size).to.equal(BURST)

    // Shown at most once across both runs: history stops a message the restarted client is handed again.
    const shown = [...shownBefore, ...bob2.messages()]
    const shownIds = shown.map((e) => String(e.id))
    expect(new Set(shownIds).size, 'a message was shown twice').to.equal(shownIds.length)
    // At most the one message being handed over when the kill came was stored and not shown; it is in history.
    expect(shown.length).to.be.within(BURST - 1, BURST)
    const shownTexts = shown.map((e) => String(e.text))
    expect(shownTexts).to.deep.equal(texts.filter((t) => shownTexts.includes(t)))
  })

  it('sender killed (SIGKILL) mid-burst: every message it reported pending is in its history, once, and ends delivered', async () => {
    const aliceProfile = fixtureProfile('alice')
    const alice1 = await start('alice', aliceProfile)
    const bob = await start('bob', fixtureProfile('bob'))
    const texts = Array.from({ length: BURST }, (_, i) => `own ${i}`)
    alice1.child.stdin.write(texts.map((text) => JSON.stringify({ type: 'send', to: 'bob', text })).join('\n') + '\n')
    await bob.message('own 49')
    alice1.kill()
    await alice1.exited
    const accepted = alice1.lines.filter((e) => e.type === 'pending').map((e) => String(e.id))
    expect(accepted.length, 'the kill came mid-burst').to.be.above(49)

    const alice2 = await start('alice', aliceProfile)
    const restored = alice2.lines.filter((e) => e.type === 'pending').map((e) => String(e.id))
    if (restored.length)
      await alice2.waitFor(
        (e) => e.type === 'delivered' && e.id === restored[restored.length - 1],
        'the restored outbox delivered',
        60_000,
      )
    const stored = await historyOf(alice2, 'bob')
    // Reported pending means stored (the kill may also have come between storing one and printing its line): in order, once.
    expect(stored.slice(0, accepted.length).map((m) => m.id)).to.deep.equal(accepted)
    expect(stored.map((m) => m.text)).to.deep.equal(texts.slice(0, stored.length))
    expect(new Set(stored.map((m) => m.id)).size).to.equal(stored.length)
    // What bob received is delivered in alice's history (a message stored but not yet in the outbox when the kill came
    // stays pending: honest, as it never left).
    const states = new Map(stored.map((m) => [String(m.id), m.state]))
    for (const received of bob.messages())
      expect(states.get(String(received.id)), String(received.text)).to.equal('delivered')
  })

  it('an import killed (SIGKILL) halfway changes nothing; run again it adds everything, while the client runs', async () => {
    const aliceProfile = fixtureProfile('alice')
    const alice = await start('alice', aliceProfile)
    const bob = await start('bob', fixtureProfile('bob'))
    alice.send({ type: 'send', to: 'bob', text: 'before the import' })
    await bob.message('before the import')
    const big = path.join(tempDir(), 'big.json')
    const count = 100_000
    const lines = Array.from({ length: count }, (_, i) => {
      const at = new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString()
      return JSON.stringify({
        id: `old${i}`,
        peer: 'carol',
        from: 'carol',
        to: 'alice',
        out: false,
        text: `old message number ${i} от Карол`,
        sent: at,
        received: at,
      })
    })
    fs.writeFileSync(
      big,
      `{"format":"udsu-history","version":1,"owner":"alice","exported":"2026-01-01T00:00:00.000Z","messages":[\n${lines.join(',\n')}\n]}\n`,
    )

    // Killed once its transaction has written to the WAL: the import is under way, not finished.
    const wal = path.join(aliceProfile, `${HISTORY_FILE}-wal`)
    const walBefore = fs.statSync(wal).size
    const importer = spawn(process.execPath, [CLI, 'history', 'import', big, '--profile', aliceProfile], {
      stdio: 'pipe',
    })
    const exited = new Promise((resolve) => importer.once('exit', resolve))
    await new Promise<void>((resolve, reject) => {
      const watcher = fs.watch(aliceProfile, () => {
        if (fs.statSync(wal).size > walBefore + 4 * 1024 * 1024) finish(resolve)
      })
      importer.once('exit', () => finish(() => reject(new Error('the import finished before it could be killed'))))
      const finish = (settle: () => void) => (watcher.close(), settle())
    })
    importer.kill('SIGKILL')
    await exited
    expect(await historyOf(alice, 'carol')).to.deep.equal([])
    expect((await historyOf(alice, 'bob')).map((m) => m.text)).to.deep.equal(['before the import'])

    const result = udsuHistory(['import', big, '--profile', aliceProfile])
    expect(result.stderr).to.equal('') // piped: no progress bar
    expect(result.stdout).to.equal(`imported ${big} (udsu export): ${count} added, 0 already there, 0 refused\n`)
    expect(result.status).to.equal(0)
    const page = await historyOf(alice, 'carol', 3)
    expect(page.map((m) => m.text)).to.deep.equal([
      `old message number ${count - 3} от Карол`,
      `old message number ${count - 2} от Карол`,
      `old message number ${count - 1} от Карол`,
    ])
    // The running client goes on storing what arrives.
    bob.send({ type: 'send', to: 'alice', text: 'after the import' })
    await alice.message('after the import')
    expect((await historyOf(alice, 'bob')).map((m) => m.text)).to.deep.equal(['before the import', 'after the import'])
  })

  it('udsu history export and import on the command line: formats, filters, sealed files, usage errors', async () => {
    const profile = fixtureProfile('alice')
    const store = new SqliteHistoryStore(path.join(profile, HISTORY_FILE))
    store.setOwner('alice')
    store.append({
      id: 'a1',
      from: 'bob',
      to: 'alice',
      peer: 'bob',
      out: false,
      text: '<b>bold?</b>',
      ts: Date.UTC(2026, 10, 28, 9),
      storedAt: Date.UTC(2026, 10, 28, 9),
    })
    store.append({
      id: 'a2',
      from: 'alice',
      to: 'carol',
      peer: 'carol',
      out: true,
      state: 'sent',
      text: 'to carol',
      ts: Date.UTC(2026, 10, 29, 9),
      storedAt: Date.UTC(2026, 10, 29, 9),
    })
    store.close()

    const json = udsuHistory(['export', '--profile', profile, '--format', 'json'])
    expect(json.status).to.equal(0)
    expect(json.stderr).to.equal('')
    expect((JSON.parse(json.stdout) as { messages: Event[] }).messages.map((m) => m.id)).to.deep.equal(['a1', 'a2'])
    const day = udsuHistory([
      'export',
      '--profile',
      profile,
      '--format',
      'txt',
      '--since',
      '2026-11-29',
      '--until',
      '2026-11-29',
    ])
    expect(day.stdout).to.include('2026-11-29 09:00 alice: to carol ✓').and.not.include('bold')
    const bobOnly = udsuHistory(['export', '--profile', profile, '--format', 'html', '--peer', 'bob'])
    expect(bobOnly.stdout).to.include('&lt;b&gt;bold?&lt;/b&gt;').and.not.include('to carol')

    const sealed = path.join(tempDir(), 'sealed.json')
    const out = udsuHistory(['export', '--profile', profile, '--format', 'json', '--out', sealed, '--encrypt'], {
      UDSU_PASSPHRASE: 'pass phrase',
    })
    expect(out.stderr).to.equal(`exported 2 message(s) to ${sealed}\n`)
    expect(fs.readFileSync(sealed, 'utf8')).to.not.include('bold')
    const fresh = tempDir()
    const noPass = udsuHistory(['import', sealed, '--profile', fresh], { UDSU_PASSPHRASE: '' })
    expect(noPass.status).to.equal(1)
    expect(noPass.stderr).to.match(/UDSU_PASSPHRASE is empty/)
    const imported = udsuHistory(['import', sealed, '--profile', fresh], { UDSU_PASSPHRASE: 'pass phrase' })
    expect(imported.stdout).to.equal(`imported ${sealed} (udsu export): 2 added, 0 already there, 0 refused\n`)
    const twice = udsuHistory(['import', sealed, '--profile', fresh], { UDSU_PASSPHRASE: 'pass phrase' })
    expect(twice.stdout).to.equal(`imported ${sealed} (udsu export): 0 added, 2 already there, 0 refused\n`)

    const usage = udsuHistory(['export', '--profile', profile, '--format', 'pdf'])
    expect([usage.status, usage.stderr]).to.deep.equal([
      2,
      'udsu: --format must be one of json, txt, html\nRun udsu history --help for usage.\n',
    ])
    expect(udsuHistory(['export', '--profile', profile, '--format', 'json', '--since', '2026-13-01']).stderr).to.match(
      /--since "2026-13-01" is not a date/,
    )
    expect(udsuHistory(['export', '--format', 'json']).stderr).to.match(
      /say whose history: --profile DIR or --name NAME/,
    )
    const bad = path.join(tempDir(), 'bad.json')
    fs.writeFileSync(bad, '{"format":"udsu-history","version":1,')
    const refused = udsuHistory(['import', bad, '--profile', fresh])
    expect(refused.status).to.equal(1)
    expect(refused.stderr).to.match(
      /cannot be imported, nothing was changed:\n {2}it ends in the middle of the JSON at line 1/,
    )
  })
})
