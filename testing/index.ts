// udsu/testing: a rendezvous server and clients inside the test process, on real loopback sockets, with helpers that
// await events instead of sleeping; and compliance suites a transport plugin runs against itself.
import { generateKeyPair } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { Client, type ClientStats } from '../core/client'
import type { CommandRegistry } from '../core/commands'
import { DEFAULT_CONFIG, type PluginEntry } from '../core/config'
import type { Hooks } from '../core/hooks'
import { createLogger } from '../core/log'
import type { TransportRegistry } from '../core/transports'
import type { Chat, ChatMessage, Endpoint, MessageStateChange, PathKind, Problem } from '../core/types'
import { RendezvousServer } from '../server'

export type { PluginEntry }
export { describeTransportCompliance, type TransportComplianceOptions, type TransportUnderTest } from './compliance'
export { describeEncryptionCompliance, type EncryptionComplianceOptions } from './encryption-compliance'
export { MEMORY_ADDRESS, MemorySwitch, memoryTransport } from './memory'

/** How long `next` waits by default: generous for a loaded CI machine, short enough that a lost event fails fast. */
export const DEFAULT_WAIT_MS = 10_000

/**
 * The plugins every test client gets unless the network or the client says otherwise: the built-ins on loopback, with
 * 2048-bit keys (generated once per process and name, see `keyFor`).
 */
export const DEFAULT_TEST_PLUGINS: readonly PluginEntry[] = Object.freeze([
  { resolve: 'udp', options: { host: '127.0.0.1' } },
  { resolve: 'hole-punch', options: {} },
  { resolve: 'rsa', options: { bits: 2048 } },
  { resolve: 'reliable', options: {} },
])

/** What each event a test can await carries. */
export interface TestEvents {
  /** A chat message delivered to this client (the `deliver` hook). */
  message: ChatMessage
  /** One of this client's own messages changed delivery state (`messageState`). */
  state: MessageStateChange
  /** Something went wrong that the user would see (`problem`). */
  problem: Problem
  /** A path to a peer opened (`peerConnected`). */
  connected: { peer: string; path: PathKind }
  /** A path to a peer was lost (`peerLost`). */
  lost: { peer: string; reason: string }
  /** A line for the user: a plugin's notice (`source` is the plugin) or a slash command's output (`source` is `/name`). */
  info: { source: string; text: string }
}

export type TestEventName = keyof TestEvents

/** What a slash command printed, as `TestClient.command` returns it. */
export interface CommandResult {
  info: string[]
  errors: string[]
}

export interface TestClientOptions {
  /** Plugins added after the network's (e.g. the one under test: `{ resolve: require.resolve('..'), options }`). */
  plugins?: PluginEntry[]
  /** Replaces the network's plugin list entirely (then list a transport, a path and an encryption plugin yourself). */
  replacePlugins?: PluginEntry[]
  /** How long a tap on a message hook may run before it is reported as hung (the client's `hookTimeoutMs`). */
  hookTimeoutMs?: number
}

export interface TestNetworkOptions {
  /** The plugins of every client; `DEFAULT_TEST_PLUGINS` when absent. */
  plugins?: PluginEntry[]
  /** Whether the rendezvous server relays between clients (off by default: loopback paths are direct). */
  relay?: boolean
}

/** One running client of a test network, seen as its user sees it. */
export interface TestClient {
  readonly name: string
  /** The API frontends use: `send`, `peers`, `connect`, `fingerprintOf`, `stop`. */
  readonly chat: Chat
  /** The client's hooks, to tap from the test (observe, or inject a failure). */
  readonly hooks: Hooks
  /**
   * The first event of that kind matching `match` that no earlier `next` returned, whether it happened before this call
   * or happens within `timeoutMs`. Rejects with an error naming the client, the event and what it saw instead.
   */
  next<E extends TestEventName>(
    event: E,
    match?: (item: TestEvents[E]) => boolean,
    timeoutMs?: number,
  ): Promise<TestEvents[E]>
  /** Sends a chat message; resolves once it is accepted (after `compose`), rejects when a plugin refused it. */
  send(to: string, text: string): Promise<ChatMessage>
  /** Runs a slash command line (e.g. `/echo hi`) as a frontend would, and returns what it printed. */
  command(line: string): Promise<CommandResult>
  /** The local endpoint of its transport: where a test sends datagrams of its own (a forgery, a replay) to it. */
  local(): Endpoint
  /** The client's counters: datagrams `dropped` (of them `unknownKinds`, frames of a kind no plugin registered), `refused`. */
  stats(): ClientStats
  /** Stops the client (idempotent); the network stops every client on `close`. */
  stop(): Promise<void>
}

export interface TestNetwork {
  /** `host:port` of the network's rendezvous server. */
  readonly server: string
  /** Starts a client named `name` on this network and resolves once it is registered and ready. */
  client(name: string, options?: TestClientOptions): Promise<TestClient>
  /** Stops every client, then the server, and removes the profiles. */
  close(): Promise<void>
}

const silent = createLogger('silent')
const generateRsa = promisify(generateKeyPair)
/** One identity key per user name for the whole process: key generation is the slow part of starting a client. */
const keys = new Map<string, Promise<string>>()

function keyFor(name: string): Promise<string> {
  let key = keys.get(name)
  if (!key) {
    key = generateRsa('rsa', {
      modulusLength: 2048,
      publicExponent: 0x10001,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }).then(({ privateKey }) => privateKey)
    keys.set(name, key)
  }
  return key
}

/** Starts a rendezvous server on loopback; clients join it with `network.client(name)`. */
export async function createTestNetwork(options: TestNetworkOptions = {}): Promise<TestNetwork> {
  const server = new RendezvousServer({ host: '127.0.0.1', port: 0, logger: silent, relay: options.relay ?? false })
  const { port } = await server.listen()
  const address = `127.0.0.1:${port}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-testing-'))
  const clients: TestClient[] = []
  let closed = false

  return {
    server: address,
    async client(name, clientOptions = {}) {
      if (closed) throw new Error(`udsu/testing: the network is closed; cannot start "${name}"`)
      const profile = fs.mkdtempSync(path.join(dir, `${name}-`))
      fs.writeFileSync(path.join(profile, 'identity.pem'), await keyFor(name), { mode: 0o600 })
      const plugins = clientOptions.replacePlugins ?? [
        ...(options.plugins ?? DEFAULT_TEST_PLUGINS),
        ...(clientOptions.plugins ?? []),
      ]
      const client = new Client(
        {
          ...DEFAULT_CONFIG,
          frontend: 'none',
          name,
          server: address,
          profile,
          plugins,
          hookTimeoutMs: clientOptions.hookTimeoutMs,
        },
        { logger: silent },
      )
      const handle = observe(name, client)
      await client.start()
      clients.push(handle)
      return handle
    },
    async close() {
      closed = true
      // Every client and the server are stopped even when one fails to; the first failure is then reported.
      const stopped = await Promise.allSettled(clients.splice(0).map((client) => client.stop()))
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
      const failed = stopped.find((result): result is PromiseRejectedResult => result.status === 'rejected')
      if (failed) throw failed.reason
    },
  }
}

type Waiter = { match: (item: unknown) => boolean; resolve: (item: unknown) => void }

/** Taps the client's hooks before it starts, so no event is missed, and keeps every event until a `next` takes it. */
function observe(name: string, client: Client): TestClient {
  const unclaimed = new Map<TestEventName, unknown[]>()
  const waiting = new Map<TestEventName, Set<Waiter>>()
  const record = <E extends TestEventName>(event: E, item: TestEvents[E]): void => {
    for (const waiter of waiting.get(event) ?? []) {
      if (!waiter.match(item)) continue
      waiting.get(event)?.delete(waiter)
      return waiter.resolve(item)
    }
    const list = unclaimed.get(event) ?? []
    list.push(item)
    unclaimed.set(event, list)
  }
  const { hooks } = client
  // Stage 1000: the test sees what the user would, after every plugin's tap has run.
  const tap = { name: 'udsu/testing', stage: 1000 }
  hooks.deliver.tapPromise(tap, async (message) => record('message', message))
  hooks.messageState.tap(tap, (change) => record('state', change))
  hooks.problem.tap(tap, (problem) => record('problem', problem))
  hooks.peerConnected.tap(tap, (peer, kind) => record('connected', { peer, path: kind }))
  hooks.peerLost.tap(tap, (peer, reason) => record('lost', { peer, reason }))
  hooks.notice.tap(tap, ({ source, message }) => record('info', { source, text: message }))

  return {
    name,
    chat: client,
    hooks,
    next(event, match = () => true, timeoutMs = DEFAULT_WAIT_MS) {
      const test = match as (item: unknown) => boolean
      const past = unclaimed.get(event) ?? []
      const index = past.findIndex(test)
      if (index >= 0) return Promise.resolve(past.splice(index, 1)[0] as TestEvents[typeof event])
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          match: test,
          resolve: (item) => {
            clearTimeout(timer)
            resolve(item as TestEvents[typeof event])
          },
        }
        const timer = setTimeout(() => {
          waiting.get(event)?.delete(waiter)
          const others = (unclaimed.get(event) ?? []).map((item) => JSON.stringify(item)).join(', ')
          reject(
            new Error(
              `udsu/testing: ${name} saw no matching "${event}" event within ${timeoutMs} ms` +
                (others ? `; unclaimed: ${others}` : ''),
            ),
          )
        }, timeoutMs)
        const set = waiting.get(event) ?? new Set<Waiter>()
        set.add(waiter)
        waiting.set(event, set)
      })
    },
    send: (to, text) => client.send(to, text),
    async command(line) {
      const result: CommandResult = { info: [], errors: [] }
      const commands = client.container.resolve<CommandRegistry>('commands')
      const source = /^\/(\S+)/.exec(line.trim())?.[0] ?? line
      await commands.run(line, {
        info: (text) => {
          result.info.push(text)
          record('info', { source, text })
        },
        error: (text) => result.errors.push(text),
      })
      return result
    },
    local() {
      const transport = client.container.resolve<TransportRegistry>('transports').all()[0]
      if (!transport) throw new Error(`udsu/testing: ${name} has no transport`)
      return transport.local()
    },
    stats: () => ({ ...client.stats }),
    stop: () => client.stop(),
  }
}
