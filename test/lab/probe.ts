// Drives udp-probe.js inside a lab host: send datagrams, await the ones that arrive, learn a public mapping.
import { existsSync } from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Endpoint, LabHost } from './lab'

export interface Datagram {
  from: Endpoint
  data: string
}

// The script is plain JS beside this file; compiled tests run from dist/test/lab, so walk up to the source tree too.
function probeScript(): string {
  const looked: string[] = []
  let dir = __dirname
  for (let level = 0; level < 8; level++) {
    for (const candidate of [path.join(dir, 'udp-probe.js'), path.join(dir, 'test', 'lab', 'udp-probe.js')]) {
      if (existsSync(candidate)) return candidate
      looked.push(candidate)
    }
    dir = path.dirname(dir)
  }
  throw new Error(`udp-probe.js not found; looked at ${looked.join(', ')}`)
}

export class UdpProbe {
  /** Every datagram received so far, in order. */
  readonly received: Datagram[] = []
  private readonly waiters = new Set<() => void>()
  private exited = false

  private constructor(
    readonly host: LabHost,
    /** The local UDP port the probe is bound to. */
    readonly port: number,
    private readonly child: ChildProcessWithoutNullStreams,
    lines: readline.Interface,
  ) {
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { event: string; from: Endpoint; data: string }
      if (event.event !== 'message') return
      this.received.push({ from: event.from, data: event.data })
      for (const wake of this.waiters) wake()
    })
    child.once('exit', () => {
      this.exited = true
      for (const wake of this.waiters) wake()
    })
  }

  /** Starts a probe in `host`, bound to `port` (0: any); a `reflect` probe answers each datagram with its seen source. */
  static async start(host: LabHost, options: { port?: number; reflect?: boolean } = {}): Promise<UdpProbe> {
    const args = [probeScript(), '--port', String(options.port ?? 0)]
    if (options.reflect) args.push('--reflect')
    const child = host.spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
    }) as ChildProcessWithoutNullStreams
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const lines = readline.createInterface({ input: child.stdout })
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`udp-probe in ${host.name} did not start within 10 s: ${stderr}`)),
        10_000,
      )
      lines.once('line', (line) => {
        clearTimeout(timer)
        resolve((JSON.parse(line) as { port: number }).port)
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`udp-probe in ${host.name} exited (${code}) before listening: ${stderr}`))
      })
    })
    return new UdpProbe(host, port, child, lines)
  }

  /** The probe's own address and port, as seen on its LAN (or by all, for a public host). */
  get local(): Endpoint {
    return { address: this.host.ip, port: this.port }
  }

  send(to: Endpoint, data: string): void {
    this.child.stdin.write(JSON.stringify({ send: { address: to.address, port: to.port, data } }) + '\n')
  }

  /** Resolves with the first datagram, received before or after the call, that `match`es; rejects after `timeoutMs`. */
  receive(match: (datagram: Datagram) => boolean, timeoutMs = 5_000): Promise<Datagram> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.received.find(match)
        if (found !== undefined) finish(() => resolve(found))
        else if (this.exited)
          finish(() => reject(new Error(`udp-probe in ${this.host.name} exited while waiting for a datagram`)))
      }
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no matching datagram reached ${this.host.name} within ${timeoutMs} ms`))),
        timeoutMs,
      )
      const finish = (settle: () => void): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
        settle()
      }
      this.waiters.add(check)
      check()
    })
  }

  /**
   * Learns this socket's public endpoint from a reflector probe, as a client learns it from a rendezvous server.
   * Resends every 250 ms (bounded by `timeoutMs`), since a first datagram may be lost while the lab warms up.
   */
  async discover(reflector: Endpoint, timeoutMs = 5_000): Promise<Endpoint> {
    const token = `discover-${Math.random().toString(36).slice(2)}`
    const deadline = Date.now() + timeoutMs
    for (let attempt = 0; attempt < 100 && Date.now() < deadline; attempt++) {
      this.send(reflector, token)
      const reply = await this.receive(
        (datagram) => datagram.data.includes(token),
        Math.min(250, deadline - Date.now()),
      ).catch(() => undefined)
      if (reply !== undefined) return (JSON.parse(reply.data) as { seen: Endpoint }).seen
    }
    throw new Error(
      `${this.host.name} got no answer from reflector ${reflector.address}:${reflector.port} within ${timeoutMs} ms`,
    )
  }

  /** Stops the probe (closing stdin makes it exit). */
  async close(): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.stdin.end()
    await exited
  }
}
