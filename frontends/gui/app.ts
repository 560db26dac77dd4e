// The Electron main process, kept thin: one sandboxed window showing the web frontend's renderer from a custom scheme,
// and a relay between the renderer's narrow preload bridge (IPC) and the core's bridge (a WebSocket on 127.0.0.1).
// Electron is passed in, never required here, so tests run this with a fake and no binary.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type * as Electron from 'electron'
import { RENDERER_FILES, SECURITY_HEADERS } from '../web/assets'
import { MAX_BRIDGE_MESSAGE_BYTES, parseRequestEnvelope, type CoreEvent } from '../web/bridge'

/** The parts of Electron the main process uses. */
export type ElectronApi = Pick<
  typeof Electron,
  'app' | 'BrowserWindow' | 'ipcMain' | 'protocol' | 'session' | 'dialog' | 'Notification' | 'nativeTheme'
>

/** The renderer's origin: a privileged custom scheme, so no file:// and no remote URL is ever loaded. */
export const APP_SCHEME = 'udsu'
export const APP_ORIGIN = `${APP_SCHEME}://app`
export const APP_URL = `${APP_ORIGIN}/`

/** The IPC channels the preload uses, and nothing else. */
export const IPC = {
  request: 'udsu:request',
  event: 'udsu:event',
  saveFile: 'udsu:save-file',
  openFile: 'udsu:open-file',
  notify: 'udsu:notify',
} as const

/** The core's side of the bridge: a WebSocket to the web frontend's server. */
export interface CoreSocket {
  send(text: string): void
  onMessage(listener: (text: string) => void): void
  onClose(listener: () => void): void
  close(): void
}

export interface DesktopOptions {
  /** The preload script (compiled preload.js beside this file). */
  preload: string
  /** Opens the bridge to the core; the URL carries the per-launch secret. */
  connect(): CoreSocket
}

/** Every window's options: isolated, sandboxed, no Node, no webviews. */
export function windowOptions(preload: string): Electron.BrowserWindowConstructorOptions {
  return {
    width: 1100,
    height: 720,
    minWidth: 640,
    minHeight: 420,
    title: 'udsu',
    show: false,
    autoHideMenuBar: true,
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      safeDialogs: true,
    },
  }
}

/** A request from a frame that is not our page (an injected frame, a navigation we missed) is ignored. */
export function fromApp(event: { senderFrame?: { url: string } | null }): boolean {
  const url = event.senderFrame?.url
  return typeof url === 'string' && (url === APP_URL || url.startsWith(APP_URL))
}

/** Serves the renderer's three files from the app scheme with the same CSP as the web frontend; nothing else. */
export async function serveRenderer(url: string): Promise<Response> {
  const parsed = new URL(url)
  const name = parsed.pathname.replace(/^\//, '')
  const served = parsed.host === 'app' ? RENDERER_FILES[name] : undefined
  if (!served) return new Response('not found', { status: 404, headers: SECURITY_HEADERS })
  const body = await fs.promises.readFile(served.file())
  return new Response(body, { status: 200, headers: { ...SECURITY_HEADERS, 'Content-Type': served.type } })
}

/** Must run before the app is ready: the scheme is standard (relative URLs, 'self') and secure. */
export function registerScheme(electron: ElectronApi): void {
  electron.protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: false } },
  ])
}

/** Wires everything; resolves with the window once it is created. */
export async function startDesktop(electron: ElectronApi, options: DesktopOptions): Promise<Electron.BrowserWindow> {
  const { app, BrowserWindow, ipcMain, protocol, session, dialog, Notification, nativeTheme } = electron
  app.enableSandbox()
  // Every web contents, whoever created it: no new windows, no navigation away from the app, no webviews.
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }))
    contents.on('will-navigate', (event, url) => {
      if (url !== APP_URL) event.preventDefault()
    })
    contents.on('will-redirect', (event) => event.preventDefault())
    contents.on('will-attach-webview', (event) => event.preventDefault())
  })
  app.on('window-all-closed', () => app.quit())
  await app.whenReady()

  nativeTheme.themeSource = 'system'
  const defaultSession = session.defaultSession
  // No camera, microphone, geolocation, notifications permission, …: notifications go through the bridge instead.
  defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false))
  defaultSession.setPermissionCheckHandler(() => false)
  // Nothing but the app's own files is ever fetched.
  defaultSession.webRequest.onBeforeRequest((details, callback) =>
    callback({ cancel: !details.url.startsWith(APP_URL) && !details.url.startsWith('devtools://') }),
  )
  protocol.handle(APP_SCHEME, (request) => serveRenderer(request.url))

  const window = new BrowserWindow(windowOptions(options.preload))
  const core = options.connect()
  const toRenderer = (event: CoreEvent) => {
    if (!window.isDestroyed()) window.webContents.send(IPC.event, event)
  }
  core.onMessage((text) => {
    try {
      toRenderer(JSON.parse(text) as CoreEvent)
    } catch {
      // The core sends JSON; anything else is dropped rather than passed on.
    }
  })
  core.onClose(() => app.quit())
  window.on('closed', () => core.close())

  ipcMain.on(IPC.request, (event, envelope: unknown) => {
    if (!fromApp(event)) return
    // Checked here too, so only well-formed requests reach the core.
    const checked = parseRequestEnvelope(JSON.stringify(envelope ?? null))
    if ('error' in checked) return toRenderer({ type: 'reply', id: checked.id ?? -1, ok: false, error: checked.error })
    core.send(JSON.stringify(checked))
  })
  ipcMain.handle(IPC.saveFile, async (event, suggestedName: unknown, text: unknown) => {
    if (!fromApp(event) || typeof suggestedName !== 'string' || typeof text !== 'string') return false
    const choice = await dialog.showSaveDialog(window, {
      defaultPath: path.basename(suggestedName),
      filters: [{ name: 'udsu history', extensions: ['json'] }],
    })
    if (choice.canceled || !choice.filePath) return false
    await fs.promises.writeFile(choice.filePath, text, { mode: 0o600 })
    return true
  })
  ipcMain.handle(IPC.openFile, async (event) => {
    if (!fromApp(event)) return undefined
    const choice = await dialog.showOpenDialog(window, {
      properties: ['openFile'],
      filters: [{ name: 'udsu history', extensions: ['json'] }],
    })
    const file = choice.filePaths[0]
    if (choice.canceled || !file) return undefined
    const { size } = await fs.promises.stat(file)
    if (size > MAX_BRIDGE_MESSAGE_BYTES) throw new Error(`the file is larger than ${MAX_BRIDGE_MESSAGE_BYTES} bytes`)
    return fs.promises.readFile(file, 'utf8')
  })
  ipcMain.on(IPC.notify, (event, title: unknown, body: unknown) => {
    if (!fromApp(event) || typeof title !== 'string' || typeof body !== 'string' || !Notification.isSupported()) return
    // Plain text: Linux notification daemons may read markup in the body, so angle brackets are replaced.
    const plain = (text: string, max: number) =>
      text.slice(0, max).replace(/[<>&]/g, (c) => ({ '<': '‹', '>': '›', '&': '+' })[c] ?? c)
    new Notification({ title: plain(title, 64), body: plain(body, 240), silent: false }).show()
  })

  window.once('ready-to-show', () => window.show())
  await window.loadURL(APP_URL)
  return window
}
