// A rendezvous server and real `udsu` clients inside a NAT lab, and timed message exchanges between them.
// Shared by the scenario tests (test/nat/*.test.ts) and the benchmark (bench/nat.ts).
import { appendFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { buildLab, requireLab, type Lab, type LabSpec } from '../lab/lab'
import {
  cleanupTemp,
  fixtureProfile,
  HeadlessClient,
  ServerProcess,
  writeConfig,
  type Event,
} from '../support/processes'

/** The fixture keys; a client's name need not match its key. */
export type FixtureKey = 'alice' | 'bob' | 'carol' | 'dave'

/** One measured exchange, as the docs table and the benchmark report it. */
export interface ScenarioResult {
  scenario: string
  /** The kind of the last `connected` event the sender saw for the peer. */
  path: string
  /** From the `send` request to the peer's `message` event. */
  firstMessageMs: number
  note?: string
}

/** Where results go besides the console: `UDSU_NAT_RESULTS=file` appends them as JSON lines (the benchmark reads them). */
export function record(result: ScenarioResult): void {
  console.log(
    `      [nat] ${result.scenario}: path=${result.path} first message ${result.firstMessageMs} ms${result.note ? ` (${result.note})` : ''}`,
  )
  if (process.env.UDSU_NAT_RESULTS) appendFileSync(process.env.UDSU_NAT_RESULTS, JSON.stringify(result) + '\n')
}

export class NatWorld {
  readonly clients: HeadlessClient[] = []
  server?: ServerProcess
  private serverIp = ''

  constructor(readonly lab: Lab) {}

  /** Starts `udsu server` on a public lab host (with the relay on unless told otherwise); started again, with the same key. */
  async startServer(hostName: string, options: { relay?: boolean; port?: number } = {}): Promise<ServerProcess> {
    const host = this.lab.host(hostName)
    const args = options.relay === false ? [] : ['--relay']
    this.server = await ServerProcess.start({
      host: '0.0.0.0',
      port: options.port ?? 0,
      args,
      spawner: host.spawn.bind(host),
      dataDir: this.server?.dataDir,
    })
    this.serverIp = host.ip
    return this.server
  }

  get serverAddress(): string {
    if (!this.server) throw new Error('start the server first')
    return `${this.serverIp}:${this.server.port}`
  }

  /**
   * Starts a headless client in a lab host and waits until it is ready; `holePunch` are the plugin's options. Without
   * `reliable`, a message is one datagram, so a scenario measures the path alone; with it, as users run udsu. `profile`
   * restarts a user with what it kept (its key, known peers, outbox); without it the client gets a fresh one holding `key`.
   */
  async client(
    hostName: string,
    name: string,
    key: FixtureKey,
    holePunch: Record<string, unknown> = {},
    options: { reliable?: boolean; profile?: string } = {},
  ): Promise<HeadlessClient> {
    const client = this.spawn(hostName, name, key, holePunch, options)
    await client.waitFor((e) => e.type === 'ready', `${name} to be ready`)
    return client
  }

  /** As `client`, without waiting for `ready`: to time what arrives from the process's start. */
  spawn(
    hostName: string,
    name: string,
    key: FixtureKey,
    holePunch: Record<string, unknown> = {},
    options: { reliable?: boolean; profile?: string } = {},
  ): HeadlessClient {
    const host = this.lab.host(hostName)
    const plugins = [
      'udp',
      { resolve: 'hole-punch', options: { embeddedServer: false, ...holePunch } },
      'rsa',
      ...(options.reliable ? ['reliable'] : []),
    ]
    const config = writeConfig({ plugins })
    const profile = options.profile ?? fixtureProfile(key)
    const client = HeadlessClient.spawn({
      name,
      key,
      server: this.serverAddress,
      profile,
      config,
      spawner: host.spawn.bind(host),
    })
    this.clients.push(client)
    return client
  }

  killClients(): void {
    for (const client of this.clients.splice(0)) client.kill()
  }

  kill(): void {
    this.killClients()
    this.server?.kill()
  }
}

/**
 * The mocha hooks of a scenario suite: skip or fail without a lab, build the lab once, let `prepare` set it up before any
 * traffic, start the server, kill each test's clients after it, tear everything down at the end. Returns the world.
 */
export function useNatWorld(
  spec: LabSpec,
  server: { host: string; relay?: boolean; port?: number },
  prepare?: (lab: Lab) => Promise<void>,
): () => NatWorld {
  let world: NatWorld | undefined
  before(requireLab)
  before(async () => {
    const lab = await buildLab(spec)
    world = new NatWorld(lab)
    await prepare?.(lab)
    await world.startServer(server.host, server)
  })
  afterEach(() => world?.killClients())
  after(async () => {
    world?.kill()
    await world?.lab.teardown()
    cleanupTemp()
  })
  return () => {
    if (!world) throw new Error('the NAT world is built in a before hook')
    return world
  }
}

/** Sends `from` → `to` and resolves with the time until `to` delivers it. */
export async function timedMessage(from: HeadlessClient, to: HeadlessClient, timeoutMs = 10_000): Promise<number> {
  const text = `${from.name} → ${to.name} ${randomBytes(4).toString('hex')}`
  const started = Date.now()
  from.send({ type: 'send', to: to.name, text })
  await to.message(text, timeoutMs)
  return Date.now() - started
}

/** The paths `client` reported for `peer`, in order (`connected` events). */
export function pathsTo(client: HeadlessClient, peer: string): string[] {
  return client.lines.filter((e: Event) => e.type === 'connected' && e.peer === peer).map((e) => String(e.path))
}

/** A message each way, the first one timed; returns the result with the sender's latest path. */
export async function exchange(
  scenario: string,
  a: HeadlessClient,
  b: HeadlessClient,
  timeoutMs = 10_000,
): Promise<ScenarioResult> {
  const firstMessageMs = await timedMessage(a, b, timeoutMs)
  await timedMessage(b, a, timeoutMs)
  const paths = pathsTo(a, b.name)
  return { scenario, path: paths[paths.length - 1] ?? 'none', firstMessageMs }
}

/** The `direct path to <peer>` log line's fields: which endpoint and which socket (main or a birthday one). */
export async function directPathLog(
  client: HeadlessClient,
  peer: string,
  timeoutMs = 15_000,
): Promise<{ via: string; socket: string }> {
  const line = await client.waitForLog(
    (l) => l.includes(`direct path to ${peer} {`),
    `${client.name}'s direct path to ${peer}`,
    timeoutMs,
  )
  return JSON.parse(line.slice(line.indexOf('{'))) as { via: string; socket: string }
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2)
}
