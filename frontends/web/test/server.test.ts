// The web frontend's server refuses what it must: each check performs the refused request.
import { expect } from 'chai'
import * as http from 'node:http'
import WebSocket from 'ws'
import { parseRequestEnvelope } from '../bridge'
import { CONTENT_SECURITY_POLICY } from '../assets'
import { WebServer, type BridgeConnection } from '../server'
import { wsText } from '../ws-text'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method, headers }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    request.on('error', reject)
    request.end()
  })
}

/** Opens a WebSocket; resolves with the first message, or rejects with the HTTP status of a refused handshake. */
function socket(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('message', (data) => resolve({ ws, first: wsText(data) }))
    ws.once('unexpected-response', (_request, response) =>
      reject(Object.assign(new Error(`refused ${response.statusCode}`), { status: response.statusCode })),
    )
    ws.once('error', reject)
  })
}

describe('web frontend server: secret, Host, Origin, CSP', () => {
  let server: WebServer
  let port: number

  before(async () => {
    server = new WebServer({
      port: 0,
      onConnection: (connection: BridgeConnection) => connection.send('{"type":"hello"}'),
      onMessage: (connection, text) => {
        connection.send(JSON.stringify(parseRequestEnvelope(text)))
      },
    })
    await server.listen()
    port = Number(new URL(server.url).port)
  })
  after(() => server.close())

  const secretPath = () => `/${server.secret}/`
  const host = () => ({ Host: `127.0.0.1:${port}` })

  it('listens on 127.0.0.1 only, with a 43-character secret in the URL', () => {
    expect(server.url).to.match(new RegExp(`^http://127\\.0\\.0\\.1:${port}/[A-Za-z0-9_-]{43}/$`))
  })

  it('serves the page, its script and its stylesheet with the secret, each with the CSP and no-referrer', async () => {
    for (const file of ['', 'app.js', 'style.css']) {
      const answer = await get(port, `${secretPath()}${file}`, host())
      expect(answer.status, file).to.equal(200)
      expect(answer.headers['content-security-policy']).to.equal(CONTENT_SECURITY_POLICY)
      expect(answer.headers['referrer-policy']).to.equal('no-referrer')
      expect(answer.headers['x-content-type-options']).to.equal('nosniff')
    }
    expect((await get(port, secretPath(), { Host: `localhost:${port}` })).status).to.equal(200)
  })

  it('has a CSP with no inline script, no eval, and nothing from elsewhere', () => {
    expect(CONTENT_SECURITY_POLICY)
      .to.include("default-src 'self'")
      .and.include("script-src 'self'")
      .and.include("object-src 'none'")
    expect(CONTENT_SECURITY_POLICY).to.not.match(/unsafe-inline|unsafe-eval|\*|https?:|data:/)
  })

  it('the page has no inline script and no inline style', async () => {
    const page = (await get(port, secretPath(), host())).body
    expect(page).to.match(/<script src="app.js" defer><\/script>/)
    expect(page.match(/<script/g)).to.have.length(1)
    expect(page).to.not.match(/ on[a-z]+=|style=|javascript:/i)
  })

  it('refuses every request without the secret or with a wrong one (401)', async () => {
    const wrong = `/${'A'.repeat(server.secret.length)}/`
    for (const path of [
      '/',
      '/app.js',
      '/index.html',
      wrong,
      `${wrong}app.js`,
      `/${server.secret.slice(0, -1)}/`,
      `/${server.secret}x/`,
    ]) {
      const answer = await get(port, path, host())
      expect(answer.status, path).to.equal(401)
      expect(answer.body).to.not.include('<html')
    }
  })

  it('refuses a Host other than 127.0.0.1 or localhost, secret or not (403: no DNS rebinding)', async () => {
    for (const name of [
      `evil.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      '127.0.0.1',
      `127.0.0.1:${port + 1}`,
      `[::1]:${port}`,
    ]) {
      expect((await get(port, secretPath(), { Host: name })).status, name).to.equal(403)
    }
  })

  it('serves nothing but the renderer: other paths, traversal and other methods are refused', async () => {
    expect((await get(port, `${secretPath()}../package.json`, host())).status).to.equal(404)
    expect((await get(port, `${secretPath()}bridge.js`, host())).status).to.equal(404)
    expect((await get(port, `${secretPath()}%2e%2e/%2e%2e/package.json`, host())).status).to.equal(404)
    expect((await get(port, secretPath(), host(), 'POST')).status).to.equal(405)
  })

  it('opens the bridge for our own page: the secret, our Host and our Origin', async () => {
    const { ws, first } = await socket(server.socketUrl, { Origin: server.origin })
    expect(JSON.parse(first)).to.deep.equal({ type: 'hello' })
    ws.close()
  })

  it('refuses a WebSocket without the secret (401)', async () => {
    const url = `ws://127.0.0.1:${port}/${'B'.repeat(43)}/bridge`
    await socket(url, { Origin: server.origin }).then(
      () => expect.fail('opened'),
      (error: { status?: number }) => expect(error.status).to.equal(401),
    )
  })

  it('refuses a WebSocket from another Origin, or with none (403)', async () => {
    for (const origin of [
      'http://evil.example',
      `http://127.0.0.1:${port + 1}`,
      'null',
      `https://127.0.0.1:${port}`,
      undefined,
    ]) {
      await socket(server.socketUrl, origin === undefined ? {} : { Origin: origin }).then(
        () => expect.fail(`opened with Origin ${origin}`),
        (error: { status?: number }) => expect(error.status, String(origin)).to.equal(403),
      )
    }
  })

  it('refuses a WebSocket with a foreign Host, even with the secret and our Origin (403)', async () => {
    await socket(server.socketUrl, { Origin: server.origin, Host: `evil.example:${port}` }).then(
      () => expect.fail('opened'),
      (error: { status?: number }) => expect(error.status).to.equal(403),
    )
  })
})

describe('web bridge protocol: every request is checked', () => {
  it('accepts well-formed requests', () => {
    expect(parseRequestEnvelope('{"id":1,"request":{"type":"send","to":"bob","text":"hi"}}')).to.deep.equal({
      id: 1,
      request: { type: 'send', to: 'bob', text: 'hi' },
    })
    expect(parseRequestEnvelope('{"id":2,"request":{"type":"search","query":"x","peer":"bob"}}')).to.deep.equal({
      id: 2,
      request: { type: 'search', query: 'x', peer: 'bob' },
    })
    expect(parseRequestEnvelope('{"id":3,"request":{"type":"export"}}')).to.deep.equal({
      id: 3,
      request: { type: 'export' },
    })
  })

  it('refuses malformed ones with the reason, keeping the id when it is readable', () => {
    const refused: Array<[string, RegExp]> = [
      ['not json', /not JSON/],
      ['null', /not an object/],
      ['{"request":{"type":"quit"}}', /numeric id/],
      ['{"id":-1,"request":{"type":"quit"}}', /numeric id/],
      ['{"id":1,"request":{"type":"send","to":"<script>","text":"x"}}', /peer name/],
      ['{"id":1,"request":{"type":"send","to":"bob","text":5}}', /text/],
      ['{"id":1,"request":{"type":"acceptKey","peer":"../etc"}}', /peer name/],
      ['{"id":1,"request":{"type":"history","peer":"bob"}}', /before/],
      ['{"id":1,"request":{"type":"search","query":"' + 'x'.repeat(201) + '"}}', /at most 200/],
      ['{"id":1,"request":{"type":"eval","code":"1"}}', /unknown request type "eval"/],
      ['{"id":1,"request":{"type":"__proto__"}}', /unknown request type/],
    ]
    for (const [raw, reason] of refused) {
      const parsed = parseRequestEnvelope(raw)
      expect(parsed, raw).to.have.property('error').that.matches(reason)
    }
    expect(parseRequestEnvelope('{"id":7,"request":{"type":"nope"}}')).to.include({ id: 7 })
  })
})
