// The preload: the only bridge between the sandboxed page and the main process. It exposes `window.udsuDesktop`, five
// functions typed by DesktopBridge, and never Electron's objects (no ipcRenderer, no event.sender). A sandboxed preload
// can require 'electron' and nothing else, so this file imports only types from elsewhere.
import { contextBridge, ipcRenderer } from 'electron'
import type { CoreEvent, DesktopBridge, RequestEnvelope } from '../web/bridge'

// The same names as IPC in app.ts (a sandboxed preload cannot import it).
const bridge: DesktopBridge = {
  send: (envelope: RequestEnvelope) => ipcRenderer.send('udsu:request', envelope),
  onEvent: (listener: (event: CoreEvent) => void) => {
    ipcRenderer.on('udsu:event', (_event, coreEvent: CoreEvent) => listener(coreEvent))
  },
  saveFile: (suggestedName: string, text: string) =>
    ipcRenderer.invoke('udsu:save-file', String(suggestedName), String(text)) as Promise<boolean>,
  openFile: () => ipcRenderer.invoke('udsu:open-file') as Promise<string | undefined>,
  notify: (title: string, body: string) => ipcRenderer.send('udsu:notify', String(title), String(body)),
}

contextBridge.exposeInMainWorld('udsuDesktop', bridge)
