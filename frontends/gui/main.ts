// Electron's entry: run by the gui frontend as `electron dist/frontends/gui/main.js`, with the bridge's URL in the
// environment (not in argv, which other users can read). Only here is 'electron' required, inside Electron itself.
import * as path from 'node:path'
import WebSocket from 'ws'
import { registerScheme, startDesktop, type CoreSocket, type ElectronApi } from './app'
import { wsText } from '../web/ws-text'

const electron = require('electron') as ElectronApi
const url = process.env.UDSU_BRIDGE_URL
const origin = process.env.UDSU_BRIDGE_ORIGIN
if (!url || !origin) {
  process.stderr.write('udsu gui: start it with `udsu chat --frontend gui`, which passes the bridge to it\n')
  process.exit(2)
}
delete process.env.UDSU_BRIDGE_URL

function connect(): CoreSocket {
  const socket = new WebSocket(url!, { headers: { Origin: origin! } })
  const queued: string[] = []
  socket.on('open', () => queued.splice(0).forEach((text) => socket.send(text)))
  return {
    send: (text) => (socket.readyState === WebSocket.OPEN ? socket.send(text) : void queued.push(text)),
    onMessage: (listener) => socket.on('message', (data) => listener(wsText(data))),
    onClose: (listener) => socket.on('close', listener),
    close: () => socket.close(),
  }
}

registerScheme(electron)
startDesktop(electron, { preload: path.join(__dirname, 'preload.js'), connect }).catch((error: Error) => {
  process.stderr.write(`udsu gui: ${error.message}\n`)
  electron.app.exit(1)
})
