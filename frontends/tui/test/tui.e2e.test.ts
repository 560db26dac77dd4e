// The terminal frontend end to end: a rendezvous server, two TUI clients in tmux and a headless peer.
import { expect } from 'chai'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'
import { freeUdpPort, Tmux } from './tmux'

const ROOT = path.resolve(__dirname, '../../../..')
const CLI = path.join(ROOT, 'dist/cli/index.js')
const ARTIFACT = path.join(ROOT, 'test-artifacts/tui-chat.txt')

/** A child process whose stdout lines the test can wait for. */
class Child {
  readonly lines: string[] = []
  private readonly waiters: Array<() => void> = []

  constructor(readonly process: ChildProcessWithoutNullStreams) {
    readline.createInterface({ input: process.stdout }).on('line', (line) => {
      this.lines.push(line)
      for (const wake of this.waiters.splice(0)) wake()
    })
  }

  async waitForLine(test: (line: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.lines.find(test)
      if (found) return found
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; output so far:\n${this.lines.join('\n')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => (clearTimeout(timer), resolve()))
      })
    }
  }

  stop(): void {
    if (this.process.exitCode === null) this.process.kill('SIGTERM')
  }
}

/** Does the captured screen (with escapes) use any colour? SGR 30-38, 40-48, 90-97, 100-107. */
function usesColour(screen: string): boolean {
  for (const match of screen.matchAll(/\x1b\[([\d;]*)m/g)) {
    if (match[1].split(';').some((p) => /^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$/.test(p))) return true
  }
  return false
}

describe('tui in a real terminal (tmux)', function () {
  this.timeout(60_000)
  const tmux = new Tmux()
  let tmp: string
  let port: number
  let server: Child
  let mallory: Child
  const xdg = (name: string) => path.join(tmp, `xdg-${name}`)

  const startTui = (session: string, name: string, flags: string, env: Record<string, string> = {}) =>
    tmux.start(session, `node ${CLI} --frontend tui --name ${name} ${flags} --profile ${path.join(tmp, name)}`, {
      width: 80,
      height: 24,
      cwd: ROOT,
      env: { XDG_DATA_HOME: xdg(name), ...env },
    })

  before(async function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build with npx tsc -p tsconfig.json first`)
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-tui-e2e-'))
    port = await freeUdpPort()
    server = new Child(spawn('node', [CLI, 'server', '--host', '127.0.0.1', '--port', String(port)], { cwd: ROOT }))
    await server.waitForLine((l) => l.includes('listening'), 'the rendezvous server')
  })

  after(() => {
    tmux.kill()
    mallory?.stop()
    server?.stop()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('shows the start screen prefilled from the flags; Enter accepts and remembers it', async () => {
    startTui('alice', 'alice', `--server 127.0.0.1:${port}`)
    startTui('bob', 'bob', `--server 127.0.0.1:${port}`, { NO_COLOR: '1' })
    for (const session of ['alice', 'bob']) {
      const screen = await tmux.waitFor(session, /Rendezvous server/, 'the start screen')
      expect(screen).to.match(new RegExp(`\\[${session}\\s+\\]`))
      expect(screen).to.match(new RegExp(`\\[127\\.0\\.0\\.1:${port}\\s+\\]`))
      tmux.keys(session, 'Enter')
    }
    for (const session of ['alice', 'bob']) {
      await tmux.waitFor(session, new RegExp(`server 127\\.0\\.0\\.1:${port} online`), 'the server to be online')
    }
    const file = path.join(xdg('alice'), 'udsu', 'tui.json')
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({ name: 'alice', server: `127.0.0.1:${port}` })
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600)
  })

  it('chats both ways, with the delivery tick and unread count', async () => {
    tmux.type('alice', '/msg bob Hello from alice')
    tmux.keys('alice', 'Enter')
    await tmux.waitFor('alice', /alice: Hello from alice ✓/, 'the sent tick')
    await tmux.waitFor('bob', /1 ● alice \(1\)/, 'one unread message from alice')
    tmux.keys('bob', 'M-1')
    const screen = await tmux.waitFor('bob', /alice: Hello from alice/, 'the message in the conversation')
    expect(screen).to.match(/bob → alice/)
    expect(screen).to.not.match(/alice \(1\)/)
  })

  it('shows Cyrillic, CJK and emoji intact', async () => {
    tmux.type('bob', 'Привет, Алиса! 你好 👋🎉')
    tmux.keys('bob', 'Enter')
    await tmux.waitFor('alice', /bob: Привет, Алиса! 你好 👋🎉$/m, 'the Unicode message')
    await tmux.waitFor('bob', /bob: Привет, Алиса! 你好 👋🎉 ✓/, 'the tick after wide characters')
  })

  it('sends a multi-line paste as one message', async () => {
    tmux.paste('bob', 'line one\nline two')
    await tmux.waitFor('bob', /alice> line one⏎line two/, 'the pasted text in the input line')
    tmux.keys('bob', 'Enter')
    await tmux.waitFor('alice', /bob: line one\n[^\n]*│ {12}line two\n/, 'both lines under one timestamp')
  })

  it('draws without colour when NO_COLOR is set', () => {
    expect(usesColour(tmux.capture('bob', true))).to.equal(false)
    expect(usesColour(tmux.capture('alice', true))).to.equal(true)
  })

  it('counts unread messages of another conversation', async () => {
    mallory = new Child(
      spawn(
        'node',
        [
          CLI,
          '--frontend',
          'headless',
          '--name',
          'mallory',
          '--server',
          `127.0.0.1:${port}`,
          '--profile',
          path.join(tmp, 'mallory'),
        ],
        {
          cwd: ROOT,
          env: { ...process.env, XDG_DATA_HOME: xdg('mallory') },
        },
      ),
    )
    await mallory.waitForLine((l) => l.includes('"type":"ready"'), 'mallory to be ready')
    mallory.process.stdin.write(JSON.stringify({ type: 'send', to: 'alice', text: 'ping from mallory' }) + '\n')
    await tmux.waitFor('alice', /2 ● mallory \(1\)/, "mallory's unread count")
    expect(tmux.capture('alice')).to.match(/alice → bob/)
  })

  it('shows an escape-sequence and tag injection inert', async () => {
    const attack = 'A\u001b[2JB\u001b]0;pwned\u0007C{red-fg}x{/red-fg} end'
    mallory.process.stdin.write(JSON.stringify({ type: 'send', to: 'alice', text: attack }) + '\n')
    await tmux.waitFor('alice', /mallory \(2\)/, 'the second message')
    tmux.keys('alice', 'M-2')
    const screen = await tmux.waitFor(
      'alice',
      /mallory: A\[2JB\]0;pwnedC\{red-fg\}x\{\/red-fg\} end/,
      'the attack shown as text',
    )
    // Not cleared: the earlier message and the contact list are still there; the title is ours.
    expect(screen).to.match(/mallory: ping from mallory/)
    expect(screen).to.match(/1 ● bob/)
    expect(tmux.display('alice', '#{pane_title}')).to.not.include('pwned')
  })

  it('stays usable when the terminal is resized', async () => {
    tmux.resize('alice', 50, 14)
    let screen = await tmux.waitFor(
      'alice',
      (s) => !/● bob/.test(s) && /alice → mallory/.test(s),
      'the contact list to hide',
    )
    expect(screen).to.match(/server 127\.0\.0\.1/)
    tmux.type('alice', 'small screen, still fine')
    tmux.keys('alice', 'Enter')
    await tmux.waitFor('alice', /alice: small screen, still fine ✓/, 'the message sent from a small screen')
    await mallory.waitForLine((l) => l.includes('small screen, still fine'), 'mallory to receive it')
    tmux.resize('alice', 80, 24)
    tmux.keys('alice', 'M-1')
    screen = await tmux.waitFor('alice', /1 ● bob[\s\S]*line two/, 'the full layout with the conversation with bob')
    fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true })
    fs.writeFileSync(ARTIFACT, screen)
  })

  it('lists the commands with /help', async () => {
    tmux.type('alice', '/help')
    tmux.keys('alice', 'Enter')
    const bottom = await tmux.waitFor('alice', /\/trust NAME/, 'the help')
    // Longer than the conversation's 21 rows (history adds /export, /import, /search): its top is one PgUp up.
    tmux.keys('alice', 'PPage')
    const top = await tmux.waitFor('alice', /Commands:/, 'the top of the help')
    tmux.keys('alice', 'NPage')
    for (const usage of [
      '/clear',
      '/export FILE',
      '/fingerprint [NAME]',
      '/help',
      '/import FILE',
      '/msg NAME TEXT',
      '/open NAME',
      '/peers',
      '/quit',
      '/search WORDS',
    ]) {
      expect(top + bottom).to.include(usage)
    }
  })

  /** The exit status, or a failure that shows the end of the client's log (where a hung stop shows). */
  const exitStatus = (session: string, name: string) =>
    tmux.waitForExit(session).catch((error: Error) => {
      const file = path.join(tmp, name, 'udsu.log')
      // No log when the client never got past the start screen: the profile opens after it.
      const log = fs.existsSync(file)
        ? fs.readFileSync(file, 'utf8').trim().split('\n').slice(-15).join('\n')
        : '(no log)'
      throw new Error(`${error.message}\n--- ${name}'s udsu.log ---\n${log}`)
    })

  it('leaves cleanly with /quit and with Ctrl+C', async () => {
    tmux.type('bob', '/quit')
    tmux.keys('bob', 'Enter')
    expect(await exitStatus('bob', 'bob')).to.equal(0)
    await tmux.waitFor('alice', /bob left/, 'alice to see bob leave')
    tmux.keys('alice', 'C-c')
    expect(await exitStatus('alice', 'alice')).to.equal(0)
  })

  it('prefills the remembered server on the next start; Esc quits', async () => {
    // Another profile: the settings are remembered per user data folder, not per profile.
    tmux.start('again', `node ${CLI} --frontend tui --name alice --profile ${path.join(tmp, 'alice-again')}`, {
      width: 80,
      height: 24,
      cwd: ROOT,
      env: { XDG_DATA_HOME: xdg('alice') },
    })
    await tmux.waitFor('again', new RegExp(`\\[127\\.0\\.0\\.1:${port}\\s+\\]`), 'the remembered server')
    tmux.keys('again', 'Escape')
    expect(await exitStatus('again', 'alice-again')).to.equal(0)
  })
})
