// In-process clients with the full pipeline (udp, hole-punch, rsa, reliable) on loopback, and a rendezvous server,
// for plugin tests and the benchmark. Each client records what it delivered and the states of its own messages.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Client } from '../../../core/client'
import type { Config } from '../../../core/config'
import { createLogger } from '../../../core/log'
import type { ChatMessage, MessageStateChange } from '../../../core/types'
import { RendezvousServer } from '../../../server/index'
import type { ReliableHandle, ReliableOptions } from '../index'
import '../../../test/support/data-home'

export const ROOT = (() => {
  let dir = __dirname
  for (let i = 0; i < 20 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
  return dir
})()

export interface TestClient {
  client: Client
  name: string
  profile: string
  /** Every message delivered and every state change of our own messages; empty with `record: false`. */
  delivered: ChatMessage[]
  states: MessageStateChange[]
  /** How many there were, also with `record: false`; `receipts` and `failed` count those two states. */
  counts: { delivered: number; states: number; receipts: number; failed: number }
  /** Resolves when `check` holds, re-checked after every delivery and state change; rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>
  reliable(): ReliableHandle
}

export async function startServer(): Promise<{ server: RendezvousServer; address: string }> {
  const server = new RendezvousServer({ port: 0, host: '127.0.0.1', altPort: false, logger: createLogger('error') })
  const { port } = await server.listen()
  return { server, address: `127.0.0.1:${port}` }
}

/** A profile directory holding a fixture identity key (alice, bob, carol, dave), so no key is generated. */
export function fixtureProfile(key: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `udsu-reliable-${key}-`))
  fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'keys', `${key}.pem`), path.join(dir, 'identity.pem'))
  fs.chmodSync(path.join(dir, 'identity.pem'), 0o600)
  return dir
}

export interface ClientOptions {
  profile?: string
  reliable?: Partial<ReliableOptions>
  keepaliveMs?: number
  /** `false` counts deliveries and state changes without keeping them (the benchmark's app, like a real one, does not
   *  hold three objects per message it ever sent). */
  record?: boolean
}

/**
 * For a mocha suite: `start` starts a client (and, the first time, the rendezvous server they all use); after the suite
 * every client stops, the server closes and the clients' profiles are removed.
 */
export function useNetwork(): { start(name: string, options?: ClientOptions): Promise<TestClient> } {
  let network: ReturnType<typeof startServer> | undefined
  const running: TestClient[] = []
  after(async () => {
    await Promise.all(running.map((c) => c.client.stop()))
    if (network) await (await network).server.close()
    for (const c of running) fs.rmSync(c.profile, { recursive: true, force: true })
  })
  return {
    async start(name, options) {
      network ??= startServer()
      const client = await startClient(name, (await network).address, options)
      running.push(client)
      return client
    },
  }
}

export async function startClient(name: string, server: string, options: ClientOptions = {}): Promise<TestClient> {
  const profile = options.profile ?? fixtureProfile(name)
  const config: Config = {
    name,
    server,
    profile,
    frontend: 'none',
    plugins: [
      { resolve: 'udp', options: { host: '127.0.0.1' } },
      { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: options.keepaliveMs ?? 1000 } },
      { resolve: 'rsa', options: {} },
      { resolve: 'reliable', options: options.reliable ?? {} },
    ],
    log: { level: 'error' },
  }
  const client = new Client(config, { logger: createLogger('error') })
  const delivered: ChatMessage[] = []
  const states: MessageStateChange[] = []
  const listeners = new Set<() => void>()
  const counts = { delivered: 0, states: 0, receipts: 0, failed: 0 }
  const record = options.record ?? true
  const notify = () => listeners.forEach((listener) => listener())
  client.hooks.deliver.tapPromise('test', async (message) => {
    counts.delivered++
    if (record) delivered.push(message)
    notify()
  })
  client.hooks.messageState.tap('test', (change) => {
    counts.states++
    if (change.state === 'delivered') counts.receipts++
    if (change.state === 'failed') counts.failed++
    if (record) states.push(change)
    notify()
  })
  await client.start()
  return {
    client,
    name,
    profile,
    delivered,
    states,
    counts,
    reliable: () => client.container.resolve('plugin:reliable' as never) as ReliableHandle,
    until(what, check, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          if (!check()) return
          clearTimeout(timer)
          listeners.delete(done)
          resolve()
        }
        const timer = setTimeout(() => {
          listeners.delete(done)
          reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}`))
        }, timeoutMs)
        listeners.add(done)
        done()
      })
    },
  }
}
