// Drives real `udsu` processes for integration tests: a rendezvous server and headless clients speaking JSON lines.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'
import type { NetcheckReport } from '../../cli/netcheck'
import './data-home'
import { waitUntil } from './wait'

/** The repository root, found from here whether running from source or from dist/. */
export const ROOT = (() => {
  let dir = __dirname
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  return dir
})()
export const CLI = path.join(ROOT, 'dist', 'cli', 'index.js')
export const FIXTURE_KEYS = path.join(ROOT, 'test', 'fixtures', 'keys')

export type Event = Record<string, unknown> & { type: string }

/** Starts a process: `child_process.spawn` by default; a NAT lab host's `spawn` runs it inside the host's namespace. */
export type Spawner = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess
const localSpawner: Spawner = (command, args, options) => spawn(command, args, options)
/** Every process we drive has piped stdio, so its streams are never null. */
const piped = (child: ChildProcess) => child as ChildProcessWithoutNullStreams

/** A temporary directory removed by `cleanupTemp()`. */
const temps: string[] = []
export function tempDir(prefix = 'udsu-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  temps.push(dir)
  return dir
}
export function cleanupTemp(): void {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
}

/** A profile holding a fixture identity key, so tests never wait for key generation. */
export function fixtureProfile(keyName: string): string {
  const dir = tempDir(`udsu-${keyName}-`)
  fs.copyFileSync(path.join(FIXTURE_KEYS, `${keyName}.pem`), path.join(dir, 'identity.pem'))
  fs.chmodSync(path.join(dir, 'identity.pem'), 0o600)
  return dir
}

/**
 * For a mocha suite that starts processes: returns `track`, which remembers one; each is killed after its test (a failed
 * test first prints the output of each), and the suite's temporary directories are removed after the suite.
 */
export function trackProcesses(): <T extends { kill(): void }>(process: T) => T {
  const running: Array<{ kill(): void; describe?(): string; name?: string }> = []
  afterEach(function () {
    // A failed test shows every process it started, not only the one it was waiting on: the other side's log is often
    // where the reason is (a sender that never reached the peer shows nothing on the peer's side).
    if (this.currentTest?.state === 'failed')
      for (const p of running) if (p.describe) console.log(`--- ${p.name ?? 'process'}\n${p.describe()}`)
    for (const p of running.splice(0)) p.kill()
  })
  after(cleanupTemp)
  return (process) => (running.push(process), process)
}

/** Writes a config file and returns its path. */
export function writeConfig(config: Record<string, unknown>): string {
  const file = path.join(tempDir('udsu-config-'), 'udsu.config.json')
  fs.writeFileSync(file, JSON.stringify(config))
  return file
}

/** A child process whose output lines are collected and can be awaited. */
class LineProcess<T> {
  readonly lines: T[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<number | null>
  private readonly listeners = new Set<() => void>()

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    parse: (line: string) => T,
  ) {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      this.lines.push(parse(line))
      for (const listener of this.listeners) listener()
    })
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      this.stderr.push(line)
      for (const listener of this.listeners) listener()
    })
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        for (const listener of this.listeners) listener()
        resolve(code)
      }),
    )
  }

  /** The first line (from `from` on) that matches, waiting for it up to `timeoutMs`. */
  waitFor(match: (line: T) => boolean, what: string, timeoutMs = 15_000, from = 0): Promise<T> {
    return this.awaitLine(() => this.lines.slice(from).find(match), what, timeoutMs)
  }

  /** The first stderr line (a log line) that matches, waiting for it up to `timeoutMs`. */
  waitForLog(match: (line: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    return this.awaitLine(() => this.stderr.find(match), what, timeoutMs)
  }

  private awaitLine<L>(find: () => L | undefined, what: string, timeoutMs: number): Promise<L> {
    return waitUntil(this.listeners, find, {
      timeoutMs,
      timedOut: () => `timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`,
      gone: () =>
        this.child.exitCode === null
          ? undefined
          : `process exited (${this.child.exitCode}) before ${what}\n${this.describe()}`,
    })
  }

  describe(): string {
    return `stdout:\n${this.lines.map((l) => `  ${JSON.stringify(l)}`).join('\n')}\nstderr:\n${this.stderr.map((l) => `  ${l}`).join('\n')}`
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

export class ServerProcess extends LineProcess<string> {
  port = 0
  /** Where it keeps its key: give it to a restart (`start({ dataDir })`) so that the clients recognise the same server. */
  dataDir = ''

  static async start(
    options: { port?: number; host?: string; args?: string[]; spawner?: Spawner; dataDir?: string } = {},
  ): Promise<ServerProcess> {
    const dataDir = options.dataDir ?? tempDir('udsu-server-')
    const args = [
      CLI,
      'server',
      '--host',
      options.host ?? '127.0.0.1',
      '--port',
      String(options.port ?? 0),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      ...(options.args ?? []),
    ]
    const child = piped((options.spawner ?? localSpawner)(process.execPath, args, { stdio: 'pipe' }))
    const server = new ServerProcess(child, (line) => line)
    server.dataDir = dataDir
    const listening = await server.waitFor(
      (line) => line.startsWith('udsu server listening on udp '),
      'the listening line',
    )
    server.port = Number(listening.split(':').pop())
    return server
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }
}

export interface ClientOptions {
  name: string
  server: string
  /** A fixture key name; defaults to the client's name. */
  key?: string
  profile?: string
  config?: string
  args?: string[]
  /** Where the process runs: on this machine by default, or e.g. `labHost.spawn.bind(labHost)` inside a NAT lab. */
  spawner?: Spawner
}

export class HeadlessClient extends LineProcess<Event> {
  constructor(
    child: ChildProcessWithoutNullStreams,
    readonly name: string,
    /** The profile directory, so a test can restart the same user. */
    readonly profile: string,
  ) {
    super(child, (line) => {
      try {
        return JSON.parse(line) as Event
      } catch {
        // The contract is JSON only on stdout: anything else fails the test that waits on it.
        return { type: 'not-json', line }
      }
    })
  }

  static spawn(options: ClientOptions): HeadlessClient {
    const profile = options.profile ?? fixtureProfile(options.key ?? options.name)
    const args = [
      CLI,
      'chat',
      '--frontend',
      'headless',
      '--name',
      options.name,
      '--server',
      options.server,
      '--profile',
      profile,
      '--log-level',
      'debug',
    ]
    if (options.config) args.push('--config', options.config)
    const child = piped(
      (options.spawner ?? localSpawner)(process.execPath, [...args, ...(options.args ?? [])], {
        cwd: path.dirname(profile),
        stdio: 'pipe',
      }),
    )
    return new HeadlessClient(child, options.name, profile)
  }

  /** Spawns a client and waits until it is ready. */
  static async start(options: ClientOptions): Promise<HeadlessClient> {
    const client = HeadlessClient.spawn(options)
    await client.waitFor((e) => e.type === 'ready', `${options.name} to be ready`)
    return client
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify(command) + '\n')
  }

  /** Waits for a chat message with this text. */
  message(text: string, timeoutMs?: number): Promise<Event> {
    return this.waitFor((e) => e.type === 'message' && e.text === text, `${this.name} to receive "${text}"`, timeoutMs)
  }

  messages(): Event[] {
    return this.lines.filter((e) => e.type === 'message')
  }

  async quit(): Promise<number | null> {
    this.send({ type: 'quit' })
    return this.exited
  }
}

/** What a finished `udsu netcheck` printed, and how it exited. */
export interface NetcheckRun {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed, with `--json`. */
  report?: NetcheckReport
}

/** Runs `udsu netcheck ARGS` to its end (here, or in a lab host with its `spawn`); bounded by `timeoutMs`. */
export async function runNetcheck(
  args: readonly string[],
  spawner: Spawner = localSpawner,
  timeoutMs = 20_000,
): Promise<NetcheckRun> {
  const child = piped(spawner(process.execPath, [CLI, 'netcheck', ...args], { stdio: 'pipe' }))
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`udsu netcheck ${args.join(' ')} still ran after ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.once('close', (exitCode) => {
      clearTimeout(timer)
      resolve(exitCode)
    })
  })
  return {
    code,
    stdout,
    stderr,
    report: args.includes('--json') && stdout ? (JSON.parse(stdout) as NetcheckReport) : undefined,
  }
}
