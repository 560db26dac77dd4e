// Drives programs in a private tmux server, so tests see the screen a person would see.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const UTF8_ENV = { ...process.env, LANG: 'C.UTF-8' }

export class Tmux {
  /** A socket of its own: the tests never touch the user's tmux sessions, and kill() ends them all. */
  readonly socket = `udsu-tui-${process.pid}-${randomBytes(3).toString('hex')}`

  run(...args: string[]): string {
    // -u: UTF-8 output even where the test's locale does not say so.
    return execFileSync('tmux', ['-u', '-L', this.socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      env: UTF8_ENV,
    })
  }

  /** Where each session's program writes its exit status: more dependable than tmux's dead-pane status, which can lag. */
  private readonly statusDir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-tmux-'))

  start(
    session: string,
    command: string,
    options: { width: number; height: number; cwd: string; env: Record<string, string> },
  ): void {
    const env = Object.entries({ TERM: 'xterm-256color', LANG: 'C.UTF-8', ...options.env }).flatMap(([k, v]) => [
      '-e',
      `${k}=${v}`,
    ])
    const status = path.join(this.statusDir, session)
    fs.rmSync(status, { force: true })
    // The shell records the status, then keeps the pane (and its last screen) open for the test to read.
    const wrapped = `${command}; echo $? > ${status}; exec sleep 600`
    this.run(
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      String(options.width),
      '-y',
      String(options.height),
      '-c',
      options.cwd,
      ...env,
      wrapped,
    )
  }

  capture(session: string, withEscapes = false): string {
    return this.run('capture-pane', '-p', ...(withEscapes ? ['-e'] : []), '-t', session)
  }

  /** Polls the screen until `check` holds; fails with the last screen after the deadline. */
  async waitFor(
    session: string,
    check: RegExp | ((screen: string) => boolean),
    what: string,
    timeoutMs = 30_000,
  ): Promise<string> {
    const test = typeof check === 'function' ? check : (screen: string) => check.test(screen)
    const deadline = Date.now() + timeoutMs
    let screen = ''
    while (Date.now() < deadline) {
      screen = this.capture(session)
      if (test(screen)) return screen
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`${session}: timed out waiting for ${what}; the screen was:\n${screen}`)
  }

  keys(session: string, ...keys: string[]): void {
    this.run('send-keys', '-t', session, ...keys)
  }

  /** Types text literally (no key names), as a person would. */
  type(session: string, text: string): void {
    this.run('send-keys', '-t', session, '-l', text)
  }

  /** Pastes as a terminal does, with bracketed-paste markers when the program asked for them. */
  paste(session: string, text: string): void {
    this.run('set-buffer', '-b', 'udsu-paste', text)
    this.run('paste-buffer', '-p', '-d', '-b', 'udsu-paste', '-t', session)
  }

  resize(session: string, width: number, height: number): void {
    this.run('resize-window', '-t', session, '-x', String(width), '-y', String(height))
  }

  display(session: string, format: string): string {
    return this.run('display-message', '-p', '-t', session, format).trim()
  }

  /** Waits until the program in the pane has ended; returns its exit status (128 + n after signal n). */
  async waitForExit(session: string, timeoutMs = 20_000): Promise<number> {
    const status = path.join(this.statusDir, session)
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const text = fs.existsSync(status) ? fs.readFileSync(status, 'utf8').trim() : ''
      if (text) return Number(text)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`${session}: the program did not exit; the screen was:\n${this.capture(session)}`)
  }

  kill(): void {
    try {
      this.run('kill-server')
    } catch {
      // Already gone: nothing left to clean up.
    }
    fs.rmSync(this.statusDir, { recursive: true, force: true })
  }
}

/** A UDP port nobody uses right now, for the rendezvous server. */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}
