// The README's two-terminal start in tmux: the second terminal is not offered the first one's name, and a prefilled
// name is selected, so typing replaces it.
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { freeUdpPort, Tmux } from './tmux'

const ROOT = path.resolve(__dirname, '../../../..')
const CLI = path.join(ROOT, 'dist/cli/index.js')

/** The name field's line on the start screen (under "Your name"), brackets included. */
const nameField = (screen: string): string => /Your name[^\n]*\n([^\n]*)/.exec(screen)?.[1].trim() ?? ''

describe('tui start screen with two terminals (tmux)', function () {
  this.timeout(90_000)
  const tmux = new Tmux()
  let tmp: string
  let port: number
  let server: ChildProcess

  /** `npm start` as the README says, with no --name: every session shares one data folder, as one user's terminals do. */
  const startTui = (session: string) =>
    tmux.start(session, `node ${CLI} --frontend tui --server 127.0.0.1:${port}`, {
      width: 80,
      height: 24,
      cwd: ROOT,
      env: { XDG_DATA_HOME: path.join(tmp, 'xdg') },
    })

  before(async function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build with npx tsc -p tsconfig.json first`)
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-tui-start-'))
    // bob's key is a fixture; alice starts with none, so she sees it being generated.
    const bobProfile = path.join(tmp, 'xdg', 'udsu', 'bob')
    fs.mkdirSync(bobProfile, { recursive: true, mode: 0o700 })
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'keys', 'bob.pem'), path.join(bobProfile, 'identity.pem'))
    fs.chmodSync(path.join(bobProfile, 'identity.pem'), 0o600)
    port = await freeUdpPort()
    server = spawn('node', [CLI, 'server', '--host', '127.0.0.1', '--port', String(port)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve())
      server.once('exit', (code) => reject(new Error(`the server exited with ${code}`)))
    })
  })

  after(() => {
    tmux.kill()
    if (server?.exitCode === null) server.kill('SIGTERM')
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('the first terminal starts as alice and says while it generates her key', async () => {
    startTui('first')
    const screen = await tmux.waitFor('first', /Rendezvous server/, 'the start screen')
    expect(nameField(screen)).to.match(/^\[\s+\]$/)
    tmux.type('first', 'alice')
    tmux.keys('first', 'Enter')
    const chat = await tmux.waitFor('first', /You are alice/, 'alice to be ready')
    expect(chat).to.include('generating a 3072-bit key…')
  })

  it('the second terminal is not offered alice, who is running; typing bob gives bob', async () => {
    startTui('second')
    const screen = await tmux.waitFor('second', /Rendezvous server/, 'the start screen')
    expect(nameField(screen)).to.match(/^\[\s+\]$/)
    tmux.type('second', 'bob')
    await tmux.waitFor('second', (s) => /^\[bob\s+\]$/.test(nameField(s)), 'bob in the name field')
    tmux.keys('second', 'Enter')
    await tmux.waitFor('second', /You are bob/, 'bob to be ready')
    await tmux.waitFor('second', new RegExp(`server 127\\.0\\.0\\.1:${port} online`), 'bob online')
    tmux.keys('second', 'C-c')
    expect(await tmux.waitForExit('second')).to.equal(0)
  })

  it('a remembered name not in use is prefilled and selected: typing replaces it ("carol", not "bobcarol")', async () => {
    startTui('third')
    const screen = await tmux.waitFor('third', /Rendezvous server/, 'the start screen')
    expect(nameField(screen)).to.match(/^\[bob\s+\]$/)
    // Shown selected: reverse video (SGR 7) on the prefilled name, and only on it.
    expect(tmux.capture('third', true)).to.match(/\x1b\[(?:\d+;)*7mbob\x1b\[0/)
    tmux.type('third', 'carol')
    const typed = await tmux.waitFor('third', (s) => /carol/.test(nameField(s)), 'the typed name')
    expect(nameField(typed)).to.match(/^\[carol\s+\]$/)
    tmux.keys('third', 'Escape')
    expect(await tmux.waitForExit('third')).to.equal(0)
    tmux.keys('first', 'C-c')
    expect(await tmux.waitForExit('first')).to.equal(0)
  })
})
