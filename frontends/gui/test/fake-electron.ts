// A fake of the parts of Electron the main process and the preload use: it records every call, so the tests can check
// the window options, the handlers and the IPC without the Electron binary (which the `electron` package downloads on
// its first require, so no test may require it).
import { EventEmitter } from 'node:events'
import type { ElectronApi } from '../app'

type Listener = (...args: never[]) => unknown

export interface FakeWebContents extends EventEmitter {
  windowOpenHandler?: (details: { url: string }) => { action: string }
  sent: Array<[string, unknown]>
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void
  send(channel: string, payload: unknown): void
}

function fakeWebContents(): FakeWebContents {
  const contents = new EventEmitter() as FakeWebContents
  contents.sent = []
  contents.setWindowOpenHandler = (handler) => void (contents.windowOpenHandler = handler)
  contents.send = (channel, payload) => void contents.sent.push([channel, payload])
  return contents
}

export class FakeElectron {
  readonly appEvents = new EventEmitter()
  readonly calls: string[] = []
  readonly windows: FakeWindow[] = []
  readonly ipcOn = new Map<string, Listener>()
  readonly ipcHandle = new Map<string, Listener>()
  readonly schemes: unknown[] = []
  protocolHandler?: (request: { url: string }) => Promise<Response>
  permissionRequest?: (contents: unknown, permission: string, callback: (granted: boolean) => void) => void
  permissionCheck?: (...args: unknown[]) => boolean
  beforeRequest?: (details: { url: string }, callback: (response: { cancel: boolean }) => void) => void
  saveDialogAnswer: { canceled: boolean; filePath?: string } = { canceled: true }
  openDialogAnswer: { canceled: boolean; filePaths: string[] } = { canceled: true, filePaths: [] }
  readonly notifications: Array<{ title: string; body: string }> = []
  themeSource = ''

  readonly api = this.build()

  private build(): ElectronApi {
    // The classes below are Electron's, so `this` inside them is a window: they reach the fake through this name.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const fake = this
    class BrowserWindow extends EventEmitter {
      readonly webContents = fakeWebContents()
      loaded?: string
      constructor(readonly options: unknown) {
        super()
        fake.windows.push(this)
        fake.appEvents.emit('web-contents-created', {}, this.webContents)
      }
      isDestroyed() {
        return false
      }
      show() {
        fake.calls.push('show')
      }
      async loadURL(url: string) {
        this.loaded = url
      }
    }
    class Notification {
      static isSupported() {
        return true
      }
      constructor(private readonly options: { title: string; body: string }) {}
      show() {
        fake.notifications.push({ title: this.options.title, body: this.options.body })
      }
    }
    const api = {
      app: {
        on: (name: string, listener: Listener) => fake.appEvents.on(name, listener as (...args: unknown[]) => void),
        whenReady: async () => undefined,
        enableSandbox: () => void fake.calls.push('enableSandbox'),
        quit: () => void fake.calls.push('quit'),
        exit: () => void fake.calls.push('exit'),
      },
      BrowserWindow,
      ipcMain: {
        on: (channel: string, listener: Listener) => void fake.ipcOn.set(channel, listener),
        handle: (channel: string, listener: Listener) => void fake.ipcHandle.set(channel, listener),
      },
      protocol: {
        registerSchemesAsPrivileged: (schemes: unknown[]) => void fake.schemes.push(...schemes),
        handle: (_scheme: string, handler: (request: { url: string }) => Promise<Response>) =>
          void (fake.protocolHandler = handler),
      },
      session: {
        defaultSession: {
          setPermissionRequestHandler: (handler: FakeElectron['permissionRequest']) =>
            void (fake.permissionRequest = handler),
          setPermissionCheckHandler: (handler: FakeElectron['permissionCheck']) =>
            void (fake.permissionCheck = handler),
          webRequest: {
            onBeforeRequest: (handler: FakeElectron['beforeRequest']) => void (fake.beforeRequest = handler),
          },
        },
      },
      dialog: {
        showSaveDialog: async () => fake.saveDialogAnswer,
        showOpenDialog: async () => fake.openDialogAnswer,
      },
      Notification,
      nativeTheme: {
        set themeSource(value: string) {
          fake.themeSource = value
        },
      },
    }
    return api as unknown as ElectronApi
  }
}

export type FakeWindow = EventEmitter & { options: unknown; webContents: FakeWebContents; loaded?: string }
