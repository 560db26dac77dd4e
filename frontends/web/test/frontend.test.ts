// The web frontend's logic behind the bridge, in process: the start flow, history from the history service (on open,
// on scrolling up, search, export), unread counts, key changes; a real WebSocket, fake core services.
import { expect } from 'chai'
import WebSocket from 'ws'
import { CommandRegistry } from '../../../core/commands'
import { createHooks } from '../../../core/hooks'
import { createLogger } from '../../../core/log'
import type { CoreServices } from '../../../core/plugin'
import { ServiceRegistry, type HistoryService, type StoredMessage } from '../../../core/services'
import type { Chat, ChatMessage, Settings } from '../../../core/types'
import type { CoreEvent, CoreRequest, RequestResults } from '../bridge'
import { createWebFrontend, PAGE_SIZE, type WebDeps } from '../index'
import type { WebServer } from '../server'
import { wsText } from '../ws-text'

/** 120 stored messages with bob, one a minute, every third one ours. */
function storedConversation(): StoredMessage[] {
  return Array.from({ length: 120 }, (_, i) => ({
    id: `m${i}`,
    peer: 'bob',
    from: i % 3 === 0 ? 'alice' : 'bob',
    to: i % 3 === 0 ? 'bob' : 'alice',
    text: i === 7 ? 'the café at noon' : `message ${i}`,
    ts: 1_700_000_000_000 + i * 60_000,
    out: i % 3 === 0,
    ...(i % 3 === 0 ? { state: 'delivered' as const } : {}),
    storedAt: 1_700_000_000_000 + i * 60_000,
  }))
}

class FakeHistory implements HistoryService {
  readonly stored = storedConversation()
  readonly markedRead: string[] = []
  readonly searched: Array<{ query: string; peer?: string }> = []
  async page(peer: string, options: { limit?: number; before?: string } = {}): Promise<StoredMessage[]> {
    const mine = this.stored.filter((m) => m.peer === peer)
    const end = options.before === undefined ? mine.length : mine.findIndex((m) => m.id === options.before)
    return mine.slice(Math.max(0, end - (options.limit ?? 50)), end)
  }
  async search(query: string, options: { peer?: string } = {}) {
    this.searched.push({ query, peer: options.peer })
    return this.stored
      .filter((m) => m.text.includes(query))
      .map((message) => ({
        message,
        matches: [[message.text.indexOf(query), message.text.indexOf(query) + query.length]] as Array<[number, number]>,
      }))
  }
  async conversations() {
    return this.conversationsOf().map((peer) => ({
      peer,
      last: this.stored.filter((m) => m.peer === peer).pop(),
      unread: peer === 'bob' ? 3 : 0,
    }))
  }
  async markRead(peer: string) {
    this.markedRead.push(peer)
  }
  async append(message: StoredMessage) {
    if (this.stored.some((m) => m.id === message.id && m.from === message.from)) return false
    this.stored.push(message)
    return true
  }
  async count(peer?: string) {
    return this.stored.filter((m) => peer === undefined || m.peer === peer).length
  }
  readonly exports: Array<{ peer?: string; format: string }> = []
  readonly imports: Array<{ text: string; peer?: string; file?: string }> = []
  /** Like the plugin's: one message per line, `sent` and `received` as ISO times. */
  async exportText(options: { peer?: string; format: 'json' | 'txt' | 'html' }): Promise<string> {
    this.exports.push(options)
    const lines = this.stored
      .filter((m) => options.peer === undefined || m.peer === options.peer)
      .map((m) =>
        JSON.stringify({
          id: m.id,
          peer: m.peer,
          from: m.from,
          to: m.to,
          out: m.out,
          ...(m.state ? { state: m.state } : {}),
          text: m.text,
          sent: new Date(m.ts).toISOString(),
          received: new Date(m.storedAt).toISOString(),
        }),
      )
    return `{"format":"udsu-history","version":1,"owner":"alice","exported":"${new Date().toISOString()}","messages":[\n${lines.join(',\n')}\n]}\n`
  }
  /** Merges by sender and id like the plugin; a file that is not an export changes nothing and throws naming the file. */
  async importText(
    text: string,
    options: { peer?: string; file?: string } = {},
  ): Promise<{ added: number; skipped: number; refused: number }> {
    this.imports.push({ text, ...options })
    const file = JSON.parse(text) as { format?: string; messages?: Array<Record<string, unknown>> }
    if (file.format !== 'udsu-history' || !Array.isArray(file.messages))
      throw new Error(
        `${options.file ?? 'the file'} cannot be imported, nothing was changed:\n  it is not a udsu export`,
      )
    let added = 0
    let skipped = 0
    for (const m of file.messages) {
      const message = {
        id: m.id,
        peer: m.peer,
        from: m.from,
        to: m.to,
        out: m.out,
        text: m.text,
        ts: Date.parse(m.sent as string),
        storedAt: Date.parse(m.received as string),
      } as StoredMessage
      if (await this.append(message)) added++
      else skipped++
    }
    this.stored.sort((a, b) => a.ts - b.ts)
    return { added, skipped, refused: 0 }
  }
  conversationsOf(): string[] {
    return [...new Set(this.stored.map((m) => m.peer))]
  }
}

/** The renderer's side: requests with ids, and every event kept. */
class Renderer {
  readonly events: CoreEvent[] = []
  private nextId = 1
  private readonly listeners = new Set<() => void>()
  constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.events.push(JSON.parse(wsText(data)) as CoreEvent)
      for (const listener of this.listeners) listener()
    })
  }
  static async open(server: WebServer): Promise<Renderer> {
    const ws = new WebSocket(server.socketUrl, { headers: { Origin: server.origin } })
    const renderer = new Renderer(ws)
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    return renderer
  }
  event<T extends CoreEvent['type']>(
    type: T,
    match: (event: Extract<CoreEvent, { type: T }>) => boolean = () => true,
  ): Promise<Extract<CoreEvent, { type: T }>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(
          (e): e is Extract<CoreEvent, { type: T }> => e.type === type && match(e as Extract<CoreEvent, { type: T }>),
        )
        if (!found) return
        this.listeners.delete(check)
        clearTimeout(timer)
        resolve(found)
      }
      const timer = setTimeout(() => {
        this.listeners.delete(check)
        reject(new Error(`no ${type} event; saw ${JSON.stringify(this.events)}`))
      }, 5000)
      this.listeners.add(check)
      check()
    })
  }
  async request<K extends CoreRequest['type']>(body: Extract<CoreRequest, { type: K }>): Promise<RequestResults[K]> {
    const id = this.nextId++
    this.ws.send(JSON.stringify({ id, request: body }))
    const reply = await this.event('reply', (e) => e.id === id)
    if (!reply.ok) throw new Error(reply.error)
    return reply.result as RequestResults[K]
  }
  close() {
    this.ws.close()
  }
}

describe('web frontend behind the bridge (fake core, real WebSocket)', () => {
  let hooks: CoreServices['hooks']
  let history: FakeHistory
  let server: WebServer
  let renderer: Renderer
  let configured: Promise<Settings>
  const sent: ChatMessage[] = []
  const trusted: string[] = []

  beforeEach(async function () {
    hooks = createHooks()
    history = new FakeHistory()
    const services = new ServiceRegistry()
    // A config without the history plugin: the tests that say so in their title.
    if (!this.currentTest?.title.includes('without the history plugin'))
      services.provide('history', history, 'fake-history')
    const commands = new CommandRegistry()
    commands.register({
      name: 'trust',
      usage: '/trust NAME',
      description: 'accept a key',
      run: (args, out) => (trusted.push(args), out.info(`you now trust the new key of ${args}`)),
    })
    let counter = 0
    const chat: Chat = {
      settings: { name: 'alice', server: '127.0.0.1:7777' },
      identity: { name: 'alice', fingerprint: 'f' },
      async send(to, text) {
        const message = { id: `out${counter++}`, from: 'alice', to, text, ts: Date.now() }
        hooks.messageState.call({ id: message.id, to, state: 'pending' })
        sent.push(message)
        return message
      },
      peers: async () => [
        { name: 'bob', online: true },
        { name: 'carol', online: true },
      ],
      connect: async () => 'direct',
      fingerprintOf: (peer) => (peer === 'bob' ? '12345 67890' : undefined),
      stop: async () => undefined,
    }
    let launchedServer: WebServer | undefined
    const deps: WebDeps = {
      hooks,
      chat,
      commands,
      services,
      settings: { name: '', server: '127.0.0.1:7777' },
      logger: createLogger('silent'),
    }
    createWebFrontend(
      deps,
      { port: 0 },
      { name: 'web-test', launched: async (_url, web) => void (launchedServer = web) },
    )
    configured = hooks.configure.promise({ name: '', server: '127.0.0.1:7777' })
    // A test that never starts leaves the start window open; stopping cancels it.
    configured.catch(() => undefined)
    while (!launchedServer) await new Promise((resolve) => setImmediate(resolve))
    server = launchedServer
    renderer = await Renderer.open(server)
  })

  afterEach(async () => {
    renderer.close()
    await hooks.stop.promise()
  })

  async function startChat() {
    await renderer.event('hello')
    await renderer.request({ type: 'start', name: 'alice', server: '127.0.0.1:7777' })
    expect(await configured).to.deep.equal({ name: 'alice', server: '127.0.0.1:7777' })
    hooks.ready.call({ name: 'alice', fingerprint: 'f' })
    await renderer.event('phase', (e) => e.phase === 'chat')
  }

  it('says hello with the start window, and refuses chat requests until started', async () => {
    const hello = await renderer.event('hello')
    expect(hello).to.include({ phase: 'start', history: true })
    await renderer.request({ type: 'open', peer: 'bob' }).then(
      () => expect.fail('answered'),
      (error: Error) => expect(error.message).to.match(/not started/),
    )
  })

  it('keeps the start window with the problems of what was typed', async () => {
    await renderer.request({ type: 'start', name: 'no spaces', server: 'nowhere' })
    const phase = await renderer.event('phase', (e) => e.problems !== undefined)
    expect(phase.phase).to.equal('start')
    expect(phase.problems?.name).to.match(/The name must be/)
    expect(phase.problems?.server).to.match(/Bad address/)
  })

  it("lists the history service's conversations with their unread counts, and marks read on open", async () => {
    await startChat()
    const contacts = await renderer.event('contacts', (e) => e.contacts.some((c) => c.name === 'bob' && c.unread === 3))
    expect(contacts.contacts.map((c) => c.name)).to.include('bob')
    const page = await renderer.request({ type: 'open', peer: 'bob' })
    expect(history.markedRead).to.deep.equal(['bob'])
    expect(page.messages).to.have.length(PAGE_SIZE)
    expect(page.more).to.equal(true)
    expect(page.messages[page.messages.length - 1].id).to.equal('m119')
    expect(page.messages[0]).to.include({ id: 'm70', out: false, from: 'bob' })
    expect(page.messages.find((m) => m.id === 'm72')).to.include({ out: true, state: 'delivered' })
    await renderer.event('contacts', (e) => e.contacts.some((c) => c.name === 'bob' && c.unread === 0))
  })

  it('loads older pages when scrolling up, until the first message', async () => {
    await startChat()
    const first = await renderer.request({ type: 'open', peer: 'bob' })
    const second = await renderer.request({ type: 'history', peer: 'bob', before: first.messages[0].id })
    expect(second.messages.map((m) => m.id)).to.deep.equal(Array.from({ length: 50 }, (_, i) => `m${20 + i}`))
    const third = await renderer.request({ type: 'history', peer: 'bob', before: second.messages[0].id })
    expect(third.messages).to.have.length(20)
    expect(third.messages[0].id).to.equal('m0')
  })

  it('imports through the history service: the open conversation is the Telegram peer, new conversations join the contacts', async () => {
    await startChat()
    await renderer.request({ type: 'open', peer: 'dave' })
    // erin is no peer the server lists: only the import can bring her into the contacts.
    expect((await renderer.event('contacts')).contacts.map((c) => c.name)).to.not.include('erin')
    const at = (i: number) => new Date(1_600_000_000_000 + i * 1000).toISOString()
    const erin = [0, 1, 2].map((i) =>
      JSON.stringify({
        id: `e${i}`,
        peer: 'erin',
        from: i ? 'erin' : 'alice',
        to: i ? 'alice' : 'erin',
        out: !i,
        text: `imported ${i}`,
        sent: at(i),
        received: at(i),
      }),
    )
    // One of bob's messages is already there: skipped, not added twice.
    const again = JSON.parse(
      (await history.exportText({ peer: 'bob', format: 'json' })).split('\n')[1].replace(/,$/, ''),
    ) as Record<string, unknown>
    const text = `{"format":"udsu-history","version":1,"owner":"alice","exported":"${at(9)}","messages":[\n${[...erin, JSON.stringify(again)].join(',\n')}\n]}\n`
    expect(await renderer.request({ type: 'import', text, file: 'erin.json' })).to.deep.equal({
      imported: 3,
      skipped: 1,
      refused: 0,
    })
    expect(history.imports).to.deep.equal([{ text, peer: 'dave', file: 'erin.json' }])
    await renderer.event('contacts', (e) => e.contacts.some((c) => c.name === 'erin'))
    const page = await renderer.request({ type: 'open', peer: 'erin' })
    expect(page.messages.map((m) => [m.id, m.text, m.out])).to.deep.equal([
      ['e0', 'imported 0', true],
      ['e1', 'imported 1', false],
      ['e2', 'imported 2', false],
    ])
  })

  it('refuses a bad file with the history service\'s error, naming "the file" when the name is unknown, and changes nothing', async () => {
    await startChat()
    const before = history.stored.length
    await renderer.request({ type: 'import', text: '{"messages": "<script>"}' }).then(
      () => expect.fail('imported'),
      (error: Error) =>
        expect(error.message).to.equal('the file cannot be imported, nothing was changed:\n  it is not a udsu export'),
    )
    expect(history.imports).to.deep.equal([{ text: '{"messages": "<script>"}', file: 'the file' }])
    expect(history.stored).to.have.length(before)
    await renderer.request({ type: 'import', text: '{}', file: 'x'.repeat(256) } as never).then(
      () => expect.fail('answered'),
      (error: Error) => expect(error.message).to.match(/"file" must be a file name/),
    )
    expect(history.imports).to.have.length(1)
  })

  it('searches through the history service', async () => {
    await startChat()
    const results = await renderer.request({ type: 'search', query: 'café' })
    expect(history.searched).to.deep.equal([{ query: 'café', peer: undefined }])
    expect(results).to.have.length(1)
    expect(results[0].message.id).to.equal('m7')
    expect(results[0].matches).to.deep.equal([[4, 8]])
  })

  it("exports the history service's JSON, the file the CLI writes, named for the user, the peer and the day", async () => {
    await startChat()
    const file = await renderer.request({ type: 'export', peer: 'bob' })
    expect(history.exports).to.deep.equal([{ peer: 'bob', format: 'json' }])
    expect(file.fileName).to.equal(`udsu-alice-bob-${new Date().toISOString().slice(0, 10)}.json`)
    const parsed = JSON.parse(file.text) as {
      format: string
      version: number
      owner: string
      messages: Array<{ id: string; sent: string }>
    }
    expect(parsed).to.include({ format: 'udsu-history', version: 1, owner: 'alice' })
    expect(parsed.messages.map((m) => m.id)).to.deep.equal(history.stored.map((m) => m.id))
    const all = await renderer.request({ type: 'export' })
    expect(history.exports[1]).to.deep.equal({ format: 'json' })
    expect(all.fileName).to.match(/^udsu-alice-all-\d{4}-\d\d-\d\d\.json$/)
  })

  it("refuses export and import without the history plugin, and still keeps the session's messages", async () => {
    await startChat()
    expect((await renderer.event('hello')).history).to.equal(false)
    await renderer.request({ type: 'send', to: 'carol', text: 'kept for the session' })
    expect((await renderer.request({ type: 'open', peer: 'carol' })).messages.map((m) => m.text)).to.deep.equal([
      'kept for the session',
    ])
    for (const request of [
      { type: 'export', peer: 'carol' },
      { type: 'import', text: '{}' },
    ] as const) {
      await renderer.request(request).then(
        () => expect.fail('answered'),
        (error: Error) => expect(error.message).to.equal('export and import need the history plugin'),
      )
    }
    expect(history.exports).to.deep.equal([])
    expect(history.imports).to.deep.equal([])
  })

  it('counts a message in a background conversation as unread, and gives own messages their states', async () => {
    await startChat()
    await renderer.request({ type: 'open', peer: 'carol' })
    await hooks.deliver.promise({ id: 'x1', from: 'bob', to: 'alice', text: '<b>hi</b>', ts: 1 })
    const message = await renderer.event('message', (e) => e.message.id === 'x1')
    expect(message.message).to.include({ peer: 'bob', text: '<b>hi</b>', out: false })
    await renderer.event('contacts', (e) => e.contacts.some((c) => c.name === 'bob' && c.unread === 4))
    const own = await renderer.request({ type: 'send', to: 'carol', text: 'hello' })
    expect(own).to.include({ peer: 'carol', out: true, state: 'pending' })
    hooks.messageState.call({ id: own.id, to: 'carol', state: 'failed', reason: 'no path' })
    expect(await renderer.event('messageState', (e) => e.id === own.id && e.state !== 'pending')).to.include({
      state: 'failed',
      reason: 'no path',
    })
  })

  it('passes a key change on as such, and accepts the new key with /trust', async () => {
    await startChat()
    const now = '9f3a 0c11 72be 44d0 e5a9 1b62 0d7c 88f1 3e40 aa19 5c6d 07b2 f814 62e3 9d05 c7a8'
    hooks.problem.call({
      source: 'rsa',
      peer: 'bob',
      code: 'key-changed',
      message: `the key of bob has changed (was 1111 2222 3333 4444, now ${now}). Messages with bob are blocked until you accept the new key with /trust bob`,
    })
    hooks.problem.call({ source: 'udp', message: 'something else' })
    expect(await renderer.event('problem', (e) => e.peer === 'bob')).to.include({ keyChanged: true, fingerprint: now })
    expect(await renderer.event('problem', (e) => e.source === 'udp'))
      .to.include({ keyChanged: false })
      .and.not.have.property('fingerprint')
    // The page sends back the key it showed, and /trust gets it: a key that changed again since is refused there.
    expect(await renderer.request({ type: 'acceptKey', peer: 'bob', fingerprint: now })).to.equal(
      `you now trust the new key of bob ${now}`,
    )
    expect(trusted).to.deep.equal([`bob ${now}`])
    const error = await renderer.request({ type: 'acceptKey', peer: 'bob', fingerprint: '9f3a; /quit' } as never).then(
      () => undefined,
      (e: Error) => e,
    )
    expect(error?.message).to.match(/acceptKey needs a peer name and the "fingerprint"/)
    expect(trusted).to.have.length(1)
    await renderer.event('keyAccepted', (e) => e.peer === 'bob')
    expect(await renderer.request({ type: 'safetyNumber', peer: 'bob' })).to.equal('12345 67890')
    expect(await renderer.request({ type: 'safetyNumber', peer: 'dave' })).to.equal(null)
  })

  it('answers a malformed request with an error and goes on', async () => {
    await startChat()
    await renderer.request({ type: 'send', to: '<script>', text: 'x' } as never).then(
      () => expect.fail('answered'),
      (error: Error) => expect(error.message).to.match(/peer name/),
    )
    expect(sent.filter((m) => m.to === '<script>')).to.deep.equal([])
    expect(await renderer.request({ type: 'safetyNumber', peer: 'bob' })).to.equal('12345 67890')
  })
})
