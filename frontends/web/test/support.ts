// Real `udsu chat --frontend web` processes and Debian's chromium (through playwright-core, which never downloads one).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as readline from 'node:readline'
import { chromium, type Browser, type Locator } from 'playwright-core'
import { CLI, ROOT, tempDir } from '../../../test/support/processes'

export const CHROMIUM = process.env.UDSU_CHROMIUM ?? '/usr/bin/chromium'
/** Screenshots for people to look at; git-ignored. */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'web')

/**
 * Mocha guard: skips the suite without chromium, with the reason; fails it when `CI` is set, where chromium is installed
 * by .ci/run and these tests must run.
 */
export function requireChromium(this: Mocha.Context): void {
  if (fs.existsSync(CHROMIUM)) return
  const reason = `no chromium at ${CHROMIUM} (apt-get install chromium, or set UDSU_CHROMIUM)`
  if (process.env.CI) throw new Error(`web frontend tests cannot run in CI: ${reason}`)
  console.warn(`web frontend browser tests skipped: ${reason}`)
  this.skip()
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
}

export interface WebClientOptions {
  server: string
  /** A profile folder (with an identity key, so no test waits for key generation). */
  profile: string
  /** $XDG_DATA_HOME, where the start window remembers its settings; a fresh one by default. */
  dataHome?: string
  args?: string[]
}

/** A client process with the web frontend; `url` is the page with its secret, as printed on stdout. */
export class WebClient {
  readonly stdout: string[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<number | null>
  url = ''

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    readline.createInterface({ input: child.stderr }).on('line', (line) => this.stderr.push(line))
  }

  static async start(options: WebClientOptions): Promise<WebClient> {
    const args = [
      CLI,
      'chat',
      '--frontend',
      'web',
      '--server',
      options.server,
      '--profile',
      options.profile,
      '--log-level',
      'debug',
      ...(options.args ?? []),
    ]
    const env = { ...process.env, XDG_DATA_HOME: options.dataHome ?? tempDir('udsu-web-data-') }
    const client = new WebClient(spawn(process.execPath, args, { stdio: 'pipe', env }))
    client.url = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: client.child.stdout }).on('line', (line) => {
        client.stdout.push(line)
        const found = /(http:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(line)
        if (found) resolve(found[1])
      })
      client.child.once('exit', (code) =>
        reject(new Error(`udsu exited (${code}) before printing its URL\n${client.stderr.join('\n')}`)),
      )
    })
    return client
  }

  get port(): number {
    return Number(new URL(this.url).port)
  }

  get secret(): string {
    return new URL(this.url).pathname.split('/')[1]
  }

  /** What the process logged, for a failed test's message. */
  describe(): string {
    return `stdout:\n${this.stdout.join('\n')}\nstderr:\n${this.stderr.slice(-60).join('\n')}`
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.exited
  }
}

/** How long an expectation waits by default, as Playwright's own `expect` does (which playwright-core does not ship). */
const EXPECT_TIMEOUT_MS = 10_000

/**
 * Auto-waiting expectations on a locator, the few the tests use: each polls the page until it holds or the timeout
 * passes, then fails with what it saw last.
 */
export function expect(locator: Locator) {
  const until = async (
    what: string,
    check: () => Promise<{ ok: boolean; saw: unknown }>,
    timeout = EXPECT_TIMEOUT_MS,
  ) => {
    const deadline = Date.now() + timeout
    let saw: unknown
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      const result = await check().catch((error: Error) => ({ ok: false, saw: error.message }))
      saw = result.saw
      if (result.ok) return
      if (Date.now() > deadline) throw new Error(`${locator} expected ${what}, saw ${JSON.stringify(saw)}`)
      await locator.page().waitForTimeout(delay)
    }
  }
  const matches = (text: string, expected: string | RegExp) =>
    typeof expected === 'string' ? text === expected : expected.test(text)
  const textOf = async () => (await locator.textContent({ timeout: 1000 })) ?? ''
  return {
    toBeVisible: (o: { timeout?: number } = {}) =>
      locator.waitFor({ state: 'visible', timeout: o.timeout ?? EXPECT_TIMEOUT_MS }),
    toBeHidden: (o: { timeout?: number } = {}) =>
      locator.waitFor({ state: 'hidden', timeout: o.timeout ?? EXPECT_TIMEOUT_MS }),
    toHaveText: (expected: string | RegExp, o: { timeout?: number } = {}) =>
      until(
        `text ${expected}`,
        async () => {
          const text = await textOf()
          return { ok: matches(text, expected), saw: text }
        },
        o.timeout,
      ),
    toContainText: (expected: string | RegExp, o: { timeout?: number } = {}) =>
      until(
        `to contain ${expected}`,
        async () => {
          const text = await textOf()
          return { ok: typeof expected === 'string' ? text.includes(expected) : expected.test(text), saw: text }
        },
        o.timeout,
      ),
    toHaveValue: (expected: string) =>
      until(`value ${expected}`, async () => {
        const value = await locator.inputValue({ timeout: 1000 })
        return { ok: value === expected, saw: value }
      }),
    toHaveAttribute: (name: string, expected: string | RegExp) =>
      until(`${name}=${expected}`, async () => {
        const value = (await locator.getAttribute(name, { timeout: 1000 })) ?? ''
        return { ok: matches(value, expected), saw: value }
      }),
    toBeEnabled: () =>
      until('enabled', async () => {
        const enabled = await locator.isEnabled({ timeout: 1000 })
        return { ok: enabled, saw: enabled ? 'enabled' : 'disabled' }
      }),
    toHaveCount: (expected: number) =>
      until(`${expected} elements`, async () => {
        const count = await locator.count()
        return { ok: count === expected, saw: count }
      }),
  }
}
