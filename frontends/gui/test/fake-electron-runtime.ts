// Preloaded with `node -r` in place of the Electron binary: requiring electron gets the fake, and a scripted "page"
// drives the real main process (main.js) through IPC: it answers the start window, waits for the chat, and records what it
// saw in $UDSU_FAKE_RECORD. So the gui's whole path — plugin, bridge server, main process, WebSocket with its Origin, IPC —
// runs with real processes and no Electron.
import * as fs from 'node:fs'
import Module from 'node:module'
import type { CoreEvent, RequestEnvelope } from '../../web/bridge'
import { APP_URL, IPC } from '../app'
import { FakeElectron, type FakeWebContents } from './fake-electron'

const fake = new FakeElectron()
const loader = Module as unknown as { _load(request: string, parent: unknown, isMain: boolean): unknown }
const load = loader._load
loader._load = function (request: string, parent: unknown, isMain: boolean) {
  return request === 'electron' ? fake.api : load.call(this, request, parent, isMain)
}

const record = process.env.UDSU_FAKE_RECORD ?? ''
const seen: string[] = []
const finish = (code: number, extra: Record<string, unknown> = {}) => {
  fs.writeFileSync(record, JSON.stringify({ seen, loaded: fake.windows[0]?.loaded, ...extra }))
  process.exit(code)
}
setTimeout(() => finish(4, { error: 'timed out' }), 20_000).unref()

const fromPage = { senderFrame: { url: APP_URL } }
const request = (envelope: RequestEnvelope) =>
  (fake.ipcOn.get(IPC.request) as (event: unknown, envelope: RequestEnvelope) => void)(fromPage, envelope)

fake.appEvents.on('web-contents-created', (_event: unknown, contents: FakeWebContents) => {
  const send = contents.send.bind(contents)
  contents.send = (channel: string, payload: unknown) => {
    send(channel, payload)
    const event = payload as CoreEvent
    seen.push(
      event.type === 'phase' ? `phase:${event.phase}` : event.type === 'reply' ? `reply:${event.ok}` : event.type,
    )
    if (event.type === 'hello')
      request({
        id: 1,
        request: { type: 'start', name: process.env.UDSU_FAKE_NAME ?? '', server: process.env.UDSU_FAKE_SERVER ?? '' },
      })
    if (event.type === 'phase' && event.phase === 'chat') {
      void fake.protocolHandler!({ url: APP_URL }).then((page) =>
        finish(0, { pageStatus: page.status, csp: page.headers.get('content-security-policy') }),
      )
    }
  }
})
