// `udsu chat --frontend web|gui` as a user runs it: the flag, the one stdout line, leaving at the start window, and the
// gui frontend launching "Electron" (a stand-in script: no Electron binary is ever needed or downloaded here).
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { cleanupTemp, CLI, fixtureProfile, ROOT, ServerProcess, tempDir } from '../../../test/support/processes'
import { WebClient } from './support'

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Runs udsu to its end; resolves with its exit code and output. */
function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'chat', ...args], {
      env: { ...process.env, XDG_DATA_HOME: tempDir('udsu-web-data-'), ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/** A stand-in for the Electron binary: records its arguments and the bridge variables, then exits with `code`. */
function fakeElectron(code: number): { binary: string; record: string } {
  const dir = tempDir('udsu-fake-electron-')
  const record = path.join(dir, 'record')
  const binary = path.join(dir, 'electron')
  fs.writeFileSync(
    binary,
    `#!/bin/sh\n{ echo "argv: $*"; echo "url: $UDSU_BRIDGE_URL"; echo "origin: $UDSU_BRIDGE_ORIGIN"; } > '${record}'\nexit ${code}\n`,
    { mode: 0o700 },
  )
  return { binary, record }
}

describe('udsu chat --frontend web / gui (processes)', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('listens on the port given by --web-port and prints one line with the URL', async () => {
    const port = await freePort()
    const client = await WebClient.start({
      server: '127.0.0.1:1',
      profile: fixtureProfile('alice'),
      args: ['--web-port', String(port)],
    })
    try {
      expect(client.port).to.equal(port)
      expect(client.stdout).to.deep.equal([`udsu web frontend: open ${client.url}`])
    } finally {
      // Stopped at the start window: nothing had started, so it leaves cleanly.
      expect(await client.stop()).to.equal(0)
    }
  })

  it('refuses --web-port for another frontend, and a port in use, saying why', async () => {
    const wrongFrontend = await run(['--frontend', 'headless', '--name', 'alice', '--web-port', '8080'])
    expect(wrongFrontend.code).to.equal(2)
    expect(wrongFrontend.stderr).to.include('--web-port is for the web frontend: add --frontend web')
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = (taken.address() as net.AddressInfo).port
      const inUse = await run(['--frontend', 'web', '--web-port', String(port), '--profile', fixtureProfile('alice')])
      expect(inUse.code).to.equal(1)
      expect(inUse.stderr).to.include(`udsu: the web frontend cannot listen on 127.0.0.1:${port}`)
      expect(inUse.stdout).to.equal('')
    } finally {
      taken.close()
    }
  })

  it('gui: starts Electron on main.js with the bridge in its environment, not in argv, and leaves when it closes', async () => {
    const { binary, record } = fakeElectron(0)
    const result = await run(['--frontend', 'gui', '--profile', fixtureProfile('alice')], { UDSU_ELECTRON: binary })
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('')
    const [argv, url, origin] = fs.readFileSync(record, 'utf8').trim().split('\n')
    expect(argv).to.match(/^argv: \S+\/dist\/frontends\/gui\/main\.js$/)
    expect(url).to.match(/^url: ws:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/bridge$/)
    expect(origin).to.match(/^origin: http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('gui: says so and exits non-zero when Electron cannot start or fails', async () => {
    const missing = await run(['--frontend', 'gui', '--profile', fixtureProfile('alice')], {
      UDSU_ELECTRON: '/nonexistent/electron',
    })
    expect(missing.code).to.equal(1)
    expect(missing.stderr).to.include('udsu: could not start Electron: spawn /nonexistent/electron ENOENT')
    const crashing = await run(['--frontend', 'gui', '--profile', fixtureProfile('alice')], {
      UDSU_ELECTRON: fakeElectron(3).binary,
    })
    expect(crashing.code).to.equal(1)
    expect(crashing.stderr).to.include('udsu: Electron exited with code 3')
  })
})

describe('udsu chat --frontend gui with a scripted fake Electron (real server, real main process)', function () {
  this.timeout(40_000)
  let server: ServerProcess
  before(async () => (server = await ServerProcess.start()))
  after(() => {
    server?.kill()
    cleanupTemp()
  })

  it('relays the start window and the chat between the main process and the core', async () => {
    const dir = tempDir('udsu-fake-electron-')
    const record = path.join(dir, 'record.json')
    const runtime = path.join(ROOT, 'dist', 'frontends', 'gui', 'test', 'fake-electron-runtime.js')
    const binary = path.join(dir, 'electron')
    // The "Electron binary": Node with the fake preloaded, running main.js as Electron would.
    fs.writeFileSync(binary, `#!/bin/sh\nexec '${process.execPath}' -r '${runtime}' "$@"\n`, { mode: 0o700 })
    const result = await run(['--frontend', 'gui', '--profile', fixtureProfile('alice')], {
      UDSU_ELECTRON: binary,
      UDSU_FAKE_RECORD: record,
      UDSU_FAKE_NAME: 'alice',
      UDSU_FAKE_SERVER: server.address,
    })
    const seen = JSON.parse(fs.readFileSync(record, 'utf8')) as {
      seen: string[]
      loaded: string
      pageStatus: number
      csp: string
      error?: string
    }
    expect(seen.error, result.stderr).to.equal(undefined)
    expect(result.code, result.stderr).to.equal(0)
    expect(seen.loaded).to.equal('udsu://app/')
    expect(seen.pageStatus).to.equal(200)
    expect(seen.csp).to.include("default-src 'self'")
    expect(seen.seen.slice(0, 3)).to.deep.equal(['hello', 'reply:true', 'phase:starting'])
    expect(seen.seen).to.include.members(['ready', 'server', 'phase:chat'])
  })
})
