// For the tests of what operators rely on: run `udsu` to its exit, speak to a server process over UDP as a client
// would, and wait for lines in a log file.
import { spawn } from 'node:child_process'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import { admit, publicPem } from '../../core/test/support'
import { decodeFrame, decodeJson, encodeJson, FrameKind, type ChannelEnd, type JsonMessage } from '../../protocol'
import { CLI } from '../../test/support/processes'
import { waitUntil } from '../../test/support/wait'

const RUN_MS = 20_000

/** Runs `udsu ARGS` to its exit (killed after RUN_MS): exit code, stdout, stderr. */
export function runCli(
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_MS)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** What goes in clear: the registration's steps, NAT detection and the health check; the rest is sealed once registered. */
const CLEAR = new Set(['hello', 'register', 'mapping', 'health'])

/** A UDP socket speaking the rendezvous protocol to one server; keeps every message it receives, sealed ones opened. */
export class UdpPeer {
  readonly received: JsonMessage[] = []
  /** The channel the registration set up: what the server sends after it is sealed under it, and what we send too. */
  private channel?: ChannelEnd
  private readonly listeners = new Set<() => void>()
  private rids = 0

  private constructor(
    private readonly socket: dgram.Socket,
    readonly server: { address: string; port: number },
  ) {
    socket.on('message', (bytes) => {
      const outer = decodeFrame(bytes)
      const frame = outer?.kind === FrameKind.Channel ? this.channel?.open(outer.body) : outer
      const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
      this.received.push(json ?? { t: '<not a server frame>' })
      for (const listener of this.listeners) listener()
    })
  }

  /** A socket on loopback (`host`: another loopback address, to be another client address to the server). */
  static async open(
    server: { address: string; port: number },
    family: 'udp4' | 'udp6' = 'udp4',
    host = family === 'udp4' ? '127.0.0.1' : '::1',
  ): Promise<UdpPeer> {
    const socket = dgram.createSocket(family)
    await new Promise<void>((resolve) => socket.bind(0, host, resolve))
    return new UdpPeer(socket, server)
  }

  send(message: JsonMessage): Promise<void> {
    const frame = encodeJson(FrameKind.Server, message)
    return this.sendRaw(this.channel && !CLEAR.has(String(message.t)) ? this.channel.seal(frame) : frame)
  }

  /** A frame of our own (a RELAY frame), sealed under the registration's channel as a client sends it. */
  sendSealed(frame: Buffer): Promise<void> {
    if (!this.channel) throw new Error('not registered: there is no channel to seal under')
    return this.sendRaw(this.channel.seal(frame))
  }

  sendRaw(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, this.server.port, this.server.address, (e) => (e ? reject(e) : resolve())),
    )
  }

  /** The first received message (from now on, or already received when `seen` is true) that matches, within `timeoutMs`. */
  waitFor(match: (m: JsonMessage) => boolean, what: string, timeoutMs = 5000): Promise<JsonMessage> {
    return waitUntil(this.listeners, () => this.received.find(match), {
      timeoutMs,
      timedOut: () => `no ${what} within ${timeoutMs} ms; received ${JSON.stringify(this.received)}`,
    })
  }

  /** Sends a request with a fresh rid; resolves with the reply carrying it. */
  async request(message: { t: string; [field: string]: unknown }): Promise<JsonMessage> {
    const rid = (++this.rids).toString(16) + Math.random().toString(16).slice(2, 8)
    await this.send({ ...message, rid })
    return this.waitFor((m) => m.rid === rid, `reply to ${message.t}`)
  }

  /** The whole registration (cookie, then the signed challenge) under `name`, with the fixture key `key` (default: the name's). */
  register(name: string, key = name): Promise<JsonMessage> {
    return admit(
      (m) => this.request(m),
      { name, key: publicPem(key) },
      (channel) => (this.channel = channel),
    )
  }

  close(): void {
    this.socket.close()
  }
}

/** Resolves with the file's text once `match` holds for it (polled: a file has no event we could await portably). */
export async function fileText(
  file: string,
  match: (text: string) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
    if (match(text)) return text
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} in ${file}; it holds:\n${text}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
