// The web frontend's HTTP and WebSocket server: 127.0.0.1 only, every request carries the per-launch secret in its path,
// the Host header must name this machine's loopback (no DNS rebinding), and a WebSocket's Origin must be this page.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as path from 'node:path'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { RENDERER_FILES, SECURITY_HEADERS } from './assets'
import { MAX_BRIDGE_MESSAGE_BYTES } from './bridge'
import { wsText } from './ws-text'

export interface BridgeConnection {
  send(text: string): void
}

export interface WebServerOptions {
  /** 0: any free port. */
  port: number
  /** A bridge connection opened (after every check passed). */
  onConnection(connection: BridgeConnection): void
  /** A text message from a connection. */
  onMessage(connection: BridgeConnection, text: string): void
  onClose?(connection: BridgeConnection): void
}

export class WebServer {
  /** 32 random bytes, base64url: the capability every request must carry. */
  readonly secret = randomBytes(32).toString('base64url')
  private readonly http = http.createServer((request, response) => this.handle(request, response))
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_BRIDGE_MESSAGE_BYTES })
  private readonly open = new Set<WebSocket>()
  private port = 0

  constructor(private readonly options: WebServerOptions) {
    this.http.on('upgrade', (request, socket, head) => this.upgrade(request, socket, head))
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject)
      // Loopback only: the page is for this machine's user, never the network.
      this.http.listen(this.options.port, '127.0.0.1', () => resolve())
    })
    this.port = (this.http.address() as AddressInfo).port
    return this.url
  }

  /** The page's URL, secret included. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/${this.secret}/`
  }

  /** The URL of the bridge's WebSocket, secret included. */
  get socketUrl(): string {
    return `ws://127.0.0.1:${this.port}/${this.secret}/bridge`
  }

  /** The Origin a WebSocket from our page carries. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`
  }

  broadcast(text: string): void {
    for (const socket of this.open) socket.send(text)
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.terminate()
    this.sockets.close()
    this.http.closeAllConnections()
    await new Promise<void>((resolve) => this.http.close(() => resolve()))
  }

  /** Why a request is refused (status and reason), or the path after the secret when it is allowed. */
  private check(request: http.IncomingMessage): { status: number; reason: string } | { rest: string } {
    const host = request.headers.host ?? ''
    // A page from another site that rebinds its DNS name to 127.0.0.1 still sends its own name as Host.
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`)
      return { status: 403, reason: 'this server answers only to 127.0.0.1 and localhost' }
    const url = request.url ?? '/'
    const match = /^\/([^/?#]*)\/([^?#]*)(?:[?#].*)?$/.exec(url)
    if (!match || !this.isSecret(match[1])) return { status: 401, reason: 'the URL needs the secret printed at launch' }
    return { rest: match[2] }
  }

  private isSecret(candidate: string): boolean {
    const given = Buffer.from(candidate)
    const expected = Buffer.from(this.secret)
    // Constant time, so the secret cannot be guessed byte by byte from response times.
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const refuse = (status: number, reason: string, extra: Record<string, string> = {}) => {
      response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...extra })
      response.end(`${reason}\n`)
    }
    const checked = this.check(request)
    if ('status' in checked) return refuse(checked.status, checked.reason)
    if (request.method !== 'GET' && request.method !== 'HEAD') return refuse(405, 'only GET', { Allow: 'GET, HEAD' })
    const served = RENDERER_FILES[checked.rest]
    if (!served) return refuse(404, 'not found')
    fs.readFile(served.file(), (error, body) => {
      if (error)
        return refuse(500, `the renderer is missing (${path.basename(served.file())}): build with npm run build`)
      response.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': served.type, 'Content-Length': body.length })
      response.end(request.method === 'HEAD' ? undefined : body)
    })
  }

  private upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, reason: string) => {
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`,
      )
    }
    const checked = this.check(request)
    if ('status' in checked) return refuse(checked.status, checked.reason)
    if (checked.rest !== 'bridge') return refuse(404, 'not found')
    // Browsers always send Origin on a WebSocket; only our own page may open the bridge.
    const origin = request.headers.origin
    if (origin !== this.origin && origin !== `http://localhost:${this.port}`)
      return refuse(403, 'the WebSocket Origin must be this page')
    this.sockets.handleUpgrade(request, socket, head, (ws) => {
      this.open.add(ws)
      const connection: BridgeConnection = { send: (text) => ws.send(text) }
      ws.on('message', (data, isBinary) => {
        if (isBinary) return ws.close(1003, 'text only')
        this.options.onMessage(connection, wsText(data))
      })
      ws.on('close', () => {
        this.open.delete(ws)
        this.options.onClose?.(connection)
      })
      ws.on('error', () => ws.terminate())
      this.options.onConnection(connection)
    })
  }
}
