// A real redis-server for tests (Debian's /usr/bin/redis-server): on a free port, in a temporary directory, saving
// nothing (`--save ''`), so a restart comes back empty as a worst case; stopped, killed and started again on its port.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as net from 'node:net'
import { tempDir, type Spawner } from './processes'

const READY_MS = 10_000

async function freePort(): Promise<number> {
  const listener = net.createServer()
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  const { port } = listener.address() as net.AddressInfo
  await new Promise<void>((resolve) => listener.close(() => resolve()))
  return port
}

export class RedisServer {
  private child?: ChildProcessWithoutNullStreams
  private output = ''

  private constructor(
    readonly port: number,
    private readonly dir: string,
    /** The address it listens on (127.0.0.1, or a NAT lab host's). */
    readonly host: string,
    private readonly spawner?: Spawner,
  ) {}

  /** Starts one on a free port (on this machine, or inside a NAT lab host with its `spawn`); resolves once it accepts connections. */
  static async start(options: { host?: string; spawner?: Spawner } = {}): Promise<RedisServer> {
    const redis = new RedisServer(
      await freePort(),
      tempDir('udsu-redis-'),
      options.host ?? '127.0.0.1',
      options.spawner,
    )
    await redis.restart()
    return redis
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`
  }

  /** Starts it again on the same port (empty: nothing is saved). */
  async restart(): Promise<void> {
    this.output = ''
    const args = [
      '--port',
      String(this.port),
      '--bind',
      this.host,
      '--protected-mode',
      'no',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ]
    const child = (this.spawner ?? spawn)('redis-server', args, { stdio: 'pipe' }) as ChildProcessWithoutNullStreams
    this.child = child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start within ${READY_MS} ms:\n${this.output}`)),
        READY_MS,
      )
      const seen = (chunk: Buffer) => {
        this.output += chunk.toString()
        if (this.output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout.on('data', seen)
      child.stderr.on('data', seen)
      child.once('error', (error) =>
        reject(new Error(`cannot run redis-server (apt-get install redis-server): ${error.message}`)),
      )
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${this.output}`)),
      )
    })
  }

  /** Kills it (SIGKILL: as a crash) and waits for its exit. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }
}
