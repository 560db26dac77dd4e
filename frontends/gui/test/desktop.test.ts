// The Electron main process and preload, with a fake electron module: window options, CSP, navigation, permissions, IPC.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as vm from 'node:vm'
import { CONTENT_SECURITY_POLICY } from '../../web/assets'
import { APP_URL, IPC, registerScheme, startDesktop, windowOptions, type CoreSocket } from '../app'
import { findElectron } from '../index'
import { FakeElectron, type FakeWindow } from './fake-electron'

const fromApp = { senderFrame: { url: APP_URL } }
const fromElsewhere = { senderFrame: { url: 'https://evil.example/' } }

class FakeCore implements CoreSocket {
  readonly sent: string[] = []
  private message?: (text: string) => void
  private closed?: () => void
  closedByUs = false
  send(text: string) {
    this.sent.push(text)
  }
  onMessage(listener: (text: string) => void) {
    this.message = listener
  }
  onClose(listener: () => void) {
    this.closed = listener
  }
  close() {
    this.closedByUs = true
  }
  emit(text: string) {
    this.message?.(text)
  }
  drop() {
    this.closed?.()
  }
}

describe('gui: the Electron main process with a fake electron', () => {
  let electron: FakeElectron
  let core: FakeCore
  let window: FakeWindow
  const preload = '/app/dist/frontends/gui/preload.js'

  beforeEach(async () => {
    electron = new FakeElectron()
    core = new FakeCore()
    registerScheme(electron.api)
    await startDesktop(electron.api, { preload, connect: () => core })
    window = electron.windows[0]
  })

  it('opens one window: context isolation, sandbox, no Node integration, no webviews, our preload', () => {
    expect(electron.windows).to.have.length(1)
    const prefs = (window.options as ReturnType<typeof windowOptions>).webPreferences!
    expect(prefs).to.include({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      preload,
    })
    expect(electron.calls).to.include('enableSandbox')
    expect(electron.themeSource).to.equal('system')
  })

  it('loads only the app scheme, never a remote URL or a file', () => {
    expect(window.loaded).to.equal('udsu://app/')
    expect(electron.schemes).to.deep.equal([
      { scheme: 'udsu', privileges: { standard: true, secure: true, supportFetchAPI: false } },
    ])
  })

  it('serves the renderer with the strict CSP, and nothing but its files', async () => {
    const page = await electron.protocolHandler!({ url: 'udsu://app/' })
    expect(page.status).to.equal(200)
    expect(page.headers.get('content-security-policy')).to.equal(CONTENT_SECURITY_POLICY)
    expect(await page.text()).to.include('<script src="app.js" defer></script>')
    expect((await electron.protocolHandler!({ url: 'udsu://app/app.js' })).status).to.equal(200)
    for (const url of [
      'udsu://app/../../package.json',
      'udsu://app/%2e%2e/package.json',
      'udsu://app/bridge.js',
      'udsu://other/',
      'udsu://app/index.ts',
    ]) {
      expect((await electron.protocolHandler!({ url })).status, url).to.equal(404)
    }
  })

  it('denies new windows, navigation away, redirects and webviews', () => {
    const contents = window.webContents
    expect(contents.windowOpenHandler!({ url: 'https://example.com/' })).to.deep.equal({ action: 'deny' })
    const attempt = (name: string, ...args: unknown[]) => {
      let prevented = false
      contents.emit(name, { preventDefault: () => (prevented = true) }, ...args)
      return prevented
    }
    expect(attempt('will-navigate', 'https://example.com/')).to.equal(true)
    expect(attempt('will-navigate', 'file:///etc/passwd')).to.equal(true)
    expect(attempt('will-navigate', APP_URL)).to.equal(false)
    expect(attempt('will-redirect', 'https://example.com/')).to.equal(true)
    expect(attempt('will-attach-webview', {}, {})).to.equal(true)
  })

  it('denies every permission request and check', () => {
    for (const permission of ['notifications', 'media', 'geolocation', 'clipboard-read', 'openExternal']) {
      let granted: boolean | undefined
      electron.permissionRequest!({}, permission, (answer) => (granted = answer))
      expect(granted, permission).to.equal(false)
    }
    expect(electron.permissionCheck!({}, 'notifications', APP_URL, {})).to.equal(false)
  })

  it('cancels every request that is not for the app scheme', () => {
    const cancelled = (url: string) => {
      let answer: boolean | undefined
      electron.beforeRequest!({ url }, (response) => (answer = response.cancel))
      return answer
    }
    expect(cancelled('udsu://app/app.js')).to.equal(false)
    expect(cancelled('https://example.com/tracker.png')).to.equal(true)
    expect(cancelled('http://127.0.0.1:8080/x')).to.equal(true)
    expect(cancelled('file:///etc/passwd')).to.equal(true)
  })

  it("relays checked requests from our page to the core, and the core's events to the page", () => {
    const request = electron.ipcOn.get(IPC.request)!
    request(
      fromApp as never,
      { id: 1, request: { type: 'send', to: 'bob', text: '<img src=x onerror=alert(1)>' } } as never,
    )
    expect(core.sent.map((t) => JSON.parse(t) as unknown)).to.deep.equal([
      { id: 1, request: { type: 'send', to: 'bob', text: '<img src=x onerror=alert(1)>' } },
    ])
    core.emit('{"type":"server","online":true,"server":"127.0.0.1:7777"}')
    core.emit('not json')
    expect(window.webContents.sent).to.deep.equal([
      [IPC.event, { type: 'server', online: true, server: '127.0.0.1:7777' }],
    ])
  })

  it('answers a malformed request itself and passes nothing to the core', () => {
    const request = electron.ipcOn.get(IPC.request)!
    request(fromApp as never, { id: 4, request: { type: 'eval', code: 'process.exit()' } } as never)
    request(fromApp as never, 'just a string' as never)
    expect(core.sent).to.deep.equal([])
    expect(window.webContents.sent[0]).to.deep.equal([
      IPC.event,
      { type: 'reply', id: 4, ok: false, error: 'unknown request type "eval"' },
    ])
  })

  it('ignores IPC from any frame that is not our page', async () => {
    electron.ipcOn.get(IPC.request)!(fromElsewhere as never, { id: 1, request: { type: 'quit' } } as never)
    electron.ipcOn.get(IPC.request)!({ senderFrame: null } as never, { id: 1, request: { type: 'quit' } } as never)
    expect(core.sent).to.deep.equal([])
    electron.saveDialogAnswer = { canceled: false, filePath: path.join(os.tmpdir(), 'never-written.json') }
    expect(
      await electron.ipcHandle.get(IPC.saveFile)!(fromElsewhere as never, 'x.json' as never, 'text' as never),
    ).to.equal(false)
    expect(fs.existsSync(path.join(os.tmpdir(), 'never-written.json'))).to.equal(false)
    expect(await electron.ipcHandle.get(IPC.openFile)!(fromElsewhere as never)).to.equal(undefined)
    electron.ipcOn.get(IPC.notify)!(fromElsewhere as never, 'title' as never, 'body' as never)
    expect(electron.notifications).to.deep.equal([])
  })

  it('exports and imports through file dialogs, and a cancelled dialog does nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-gui-'))
    try {
      const save = electron.ipcHandle.get(IPC.saveFile)!
      expect(
        await save(fromApp as never, 'udsu-alice-bob.json' as never, '{"format":"udsu-history"}' as never),
      ).to.equal(false)
      const file = path.join(dir, 'export.json')
      electron.saveDialogAnswer = { canceled: false, filePath: file }
      expect(
        await save(fromApp as never, '../../udsu-alice-bob.json' as never, '{"format":"udsu-history"}' as never),
      ).to.equal(true)
      expect(fs.readFileSync(file, 'utf8')).to.equal('{"format":"udsu-history"}')
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600)
      const open = electron.ipcHandle.get(IPC.openFile)!
      expect(await open(fromApp as never)).to.equal(undefined)
      electron.openDialogAnswer = { canceled: false, filePaths: [file] }
      expect(await open(fromApp as never)).to.equal('{"format":"udsu-history"}')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('shows notifications as plain text', () => {
    electron.ipcOn.get(IPC.notify)!(fromApp as never, 'bob' as never, '<b>hi</b> & <img src=x>' as never)
    electron.ipcOn.get(IPC.notify)!(fromApp as never, { toString: () => 'x' } as never, 'body' as never)
    expect(electron.notifications).to.deep.equal([{ title: 'bob', body: '‹b›hi‹/b› + ‹img src=x›' }])
  })

  it('closes the bridge with the window, and quits when the core goes away', () => {
    window.emit('closed')
    expect(core.closedByUs).to.equal(true)
    core.drop()
    expect(electron.calls).to.include('quit')
  })
})

describe('gui: the preload with a fake electron', () => {
  /** Runs the compiled preload as Electron's sandbox does: a function given a `require` that knows only 'electron'. */
  function runPreload() {
    const exposed = new Map<string, unknown>()
    const sent: unknown[][] = []
    const invoked: unknown[][] = []
    const listeners = new Map<string, (...args: unknown[]) => void>()
    const fakeElectron = {
      contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
      ipcRenderer: {
        send: (...args: unknown[]) => void sent.push(args),
        invoke: async (...args: unknown[]) => void invoked.push(args),
        on: (channel: string, listener: (...args: unknown[]) => void) => void listeners.set(channel, listener),
      },
    }
    const required: string[] = []
    const sandboxRequire = (name: string) => {
      required.push(name)
      if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`)
      return fakeElectron
    }
    const source = fs.readFileSync(path.join(__dirname, '..', 'preload.js'), 'utf8')
    const module = { exports: {} }
    const run = vm.runInNewContext(`(function (require, module, exports) {${source}\n})`, {}) as (
      ...args: unknown[]
    ) => void
    run(sandboxRequire, module, module.exports)
    return { exposed, sent, invoked, listeners, required }
  }

  it('requires only electron and exposes exactly the five bridge functions', () => {
    const { exposed, required } = runPreload()
    expect(required).to.deep.equal(['electron'])
    expect([...exposed.keys()]).to.deep.equal(['udsuDesktop'])
    const bridge = exposed.get('udsuDesktop') as Record<string, unknown>
    expect(Object.keys(bridge).sort()).to.deep.equal(['notify', 'onEvent', 'openFile', 'saveFile', 'send'])
    for (const value of Object.values(bridge)) expect(value).to.be.a('function')
  })

  it('sends on the fixed channels and hands the page the event only, never the IPC event object', () => {
    const { exposed, sent, invoked, listeners } = runPreload()
    const bridge = exposed.get('udsuDesktop') as import('../../web/bridge').DesktopBridge
    bridge.send({ id: 1, request: { type: 'quit' } })
    void bridge.saveFile('a.json', 'text')
    void bridge.openFile()
    bridge.notify('bob', 'hi')
    expect(sent).to.deep.equal([
      ['udsu:request', { id: 1, request: { type: 'quit' } }],
      ['udsu:notify', 'bob', 'hi'],
    ])
    expect(invoked).to.deep.equal([['udsu:save-file', 'a.json', 'text'], ['udsu:open-file']])
    const seen: unknown[] = []
    bridge.onEvent((event) => seen.push(event))
    const ipcEvent = { sender: { send: () => undefined }, ports: [] }
    listeners.get('udsu:event')!(ipcEvent, { type: 'ready', me: { name: 'alice', fingerprint: 'f' } })
    expect(seen).to.deep.equal([{ type: 'ready', me: { name: 'alice', fingerprint: 'f' } }])
  })
})

describe('gui: finding the Electron binary without requiring electron', () => {
  it('uses UDSU_ELECTRON when set', () => {
    expect(findElectron({ UDSU_ELECTRON: '/opt/electron/electron' })).to.equal('/opt/electron/electron')
  })

  it('says how to get the binary when the package has not downloaded it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-electron-'))
    try {
      fs.writeFileSync(path.join(dir, 'package.json'), '{}')
      expect(() => findElectron({}, () => path.join(dir, 'package.json'))).to.throw(
        /not downloaded yet: run `node node_modules\/electron\/install.js`/,
      )
      fs.writeFileSync(path.join(dir, 'path.txt'), 'electron')
      fs.mkdirSync(path.join(dir, 'dist'))
      fs.writeFileSync(path.join(dir, 'dist', 'electron'), '')
      expect(findElectron({}, () => path.join(dir, 'package.json'))).to.equal(path.join(dir, 'dist', 'electron'))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('says to install it when the package is missing', () => {
    expect(() =>
      findElectron({}, () => {
        throw new Error('Cannot find module')
      }),
    ).to.throw(/the gui needs Electron/)
  })
})

describe('gui: no build output or test requires electron', () => {
  it('only main.js and preload.js (run inside Electron) require it', () => {
    const dist = path.join(__dirname, '..', '..', '..')
    const requiring: string[] = []
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name)
        if (entry.isDirectory()) walk(file)
        else if (entry.name.endsWith('.js') && /require\(["']electron["']\)/.test(fs.readFileSync(file, 'utf8')))
          requiring.push(path.relative(dist, file))
      }
    }
    walk(dist)
    expect(requiring.sort()).to.deep.equal([
      path.join('frontends', 'gui', 'main.js'),
      path.join('frontends', 'gui', 'preload.js'),
    ])
  })
})
