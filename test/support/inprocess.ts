// Clients and servers inside the test process, on real loopback sockets, for tests that need to see inside them.
import { EventEmitter } from 'node:events'
import './data-home'
import { Client } from '../../core/client'
import { DEFAULT_CONFIG, type Config } from '../../core/config'
import { createLogger } from '../../core/log'
import type { ChatMessage, MessageStateChange, PathKind, Problem } from '../../core/types'
import { fingerprintBytes } from '../../plugins/rsa/identity'
import { RendezvousServer } from '../../server'
import { fixtureProfile } from './processes'

export const quiet = createLogger('silent')

export async function startServer(
  options: ConstructorParameters<typeof RendezvousServer>[0] = {},
): Promise<RendezvousServer> {
  const server = new RendezvousServer({ host: '127.0.0.1', port: 0, logger: quiet, ...options })
  await server.listen()
  return server
}

/** A client with no frontend whose events the test reads: what it delivered, its message states, problems, paths. */
export class TestClient extends EventEmitter {
  readonly delivered: ChatMessage[] = []
  readonly states: MessageStateChange[] = []
  readonly problems: Problem[] = []
  readonly connected: Array<{ peer: string; path: PathKind }> = []

  constructor(readonly client: Client) {
    super()
    const { hooks } = client
    hooks.deliver.tapPromise('test', async (message) => void this.record('deliver', this.delivered, message))
    hooks.messageState.tap('test', (change) => this.record('state', this.states, change))
    hooks.problem.tap('test', (problem) => this.record('problem', this.problems, problem))
    hooks.peerConnected.tap('test', (peer, path) => this.record('connected', this.connected, { peer, path }))
  }

  private record<T>(event: string, list: T[], item: T): void {
    list.push(item)
    this.emit(event, item)
  }

  /** The first item of a list (past or future) that matches, within `timeoutMs`. */
  waitFor<T>(
    event: 'deliver' | 'state' | 'problem' | 'connected',
    list: T[],
    match: (item: T) => boolean,
    timeoutMs = 15_000,
  ): Promise<T> {
    const found = list.find(match)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(event, listener)
        reject(new Error(`timed out waiting for a ${event} event of ${this.client.settings.name}`))
      }, timeoutMs)
      const listener = (item: T) => {
        if (!match(item)) return
        clearTimeout(timer)
        this.off(event, listener)
        resolve(item)
      }
      this.on(event, listener)
    })
  }

  message(text: string, timeoutMs?: number): Promise<ChatMessage> {
    return this.waitFor('deliver', this.delivered, (m) => m.text === text, timeoutMs)
  }

  state(id: string, state: MessageStateChange['state'], timeoutMs?: number): Promise<MessageStateChange> {
    return this.waitFor('state', this.states, (s) => s.id === id && s.state === state, timeoutMs)
  }
}

/** Builds (not starts) a client named `name` with a fixture key; tap its hooks, then `start()` it. */
export function makeClient(
  name: string,
  server: string,
  overrides: Partial<Config> & { key?: string } = {},
): TestClient {
  const { key, ...config } = overrides
  const client = new Client(
    { ...DEFAULT_CONFIG, frontend: 'none', name, server, profile: fixtureProfile(key ?? name), ...config },
    { logger: quiet },
  )
  return new TestClient(client)
}

/**
 * Starts alice and bob (fixture keys) at `server` and returns them by handshake role: the initiator, whose key
 * fingerprint sorts lower, is the side a REQUEST asks for an INIT (RSA work). Each is pushed to `running` as it starts.
 */
export async function startByRole(
  server: string,
  plugins: Config['plugins'],
  running: TestClient[],
): Promise<{ initiator: TestClient; responder: TestClient }> {
  const [alice, bob] = [makeClient('alice', server, { plugins }), makeClient('bob', server, { plugins })]
  for (const client of [alice, bob]) {
    running.push(client)
    await client.client.start()
  }
  const fingerprint = (client: TestClient) => fingerprintBytes(client.client.container.cradle.me.publicKey!)
  const aliceFirst = Buffer.compare(fingerprint(alice), fingerprint(bob)) < 0
  return aliceFirst ? { initiator: alice, responder: bob } : { initiator: bob, responder: alice }
}
