// The example plugins in examples/ as a third party ships them: udsu and each example packed, installed into an empty
// project, each example's own tests run there against the installed udsu/testing, and a real client process loading
// all three by package name from that project's udsu.config.js.
import { expect } from 'chai'
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'
import { createTestNetwork, type TestNetwork } from '../../testing'
import { ROOT } from '../support/processes'

const EXAMPLES = ['echo-bot', 'banned-words', 'notifier']

/** The files of docs/PLUGINS.md's walkthrough: each code block right after a `<!-- file: NAME -->` line. */
function walkthroughFiles(): Map<string, string> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'PLUGINS.md'), 'utf8')
  return new Map([...doc.matchAll(/^<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)^```$/gm)].map((m) => [m[1], m[2]]))
}

/** Runs a command to its end (no shell) and resolves with its exit code and output; never rejects. */
function run(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs = 240_000,
): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
      resolve({ code, stdout, output: `${stdout}\n${stderr}${error && code === -1 ? `\n${error.message}` : ''}` })
    })
  })
}

/** Runs a command that must succeed and returns its stdout; its whole output goes into the failure message otherwise. */
async function ok(command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd)
  expect(result.code, `${command} ${args.join(' ')} exited with ${result.code}\n${result.output}`).to.equal(0)
  return result.stdout
}

/** The version of a dev tool the repository has, so the project installs the same one (from npm's cache). */
const versionOf = (name: string): string =>
  JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version

describe('the example plugins, installed by package name beside the packed udsu', function () {
  this.timeout(300_000)
  let work: string
  let app: string
  let docPlugin: string
  let packed: Array<{ name: string; filename: string; files: Array<{ path: string }> }>

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-examples-test-'))
    app = path.join(work, 'app')
    fs.mkdirSync(app)
    // The plugin a reader of docs/PLUGINS.md builds, inside the project, so its tests find the installed udsu.
    docPlugin = path.join(app, 'udsu-plugin-signature')
    for (const [file, text] of walkthroughFiles()) {
      fs.mkdirSync(path.dirname(path.join(docPlugin, file)), { recursive: true })
      fs.writeFileSync(path.join(docPlugin, file), text)
    }
    // One pack of udsu (the dist/ `npm test` just built; --ignore-scripts keeps `prepare` from rebuilding it) and the examples.
    const specs = ['.', ...EXAMPLES.map((name) => `./examples/${name}`), docPlugin]
    packed = JSON.parse(
      await ok('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work, ...specs], ROOT),
    ) as typeof packed
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'udsu-examples-project', private: true }))
    const tarballs = packed.map((p) => path.join(work, p.filename))
    await ok(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        ...tarballs,
        `mocha@${versionOf('mocha')}`,
        `chai@${versionOf('chai')}`,
      ],
      app,
    )
  })

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  for (const name of EXAMPLES) {
    it(`udsu-plugin-${name}: its own tests pass against the installed udsu/testing`, async () => {
      const dir = path.join(app, 'node_modules', `udsu-plugin-${name}`)
      expect(fs.realpathSync(dir), 'installed as a copy, not a link into the repository').to.equal(dir)
      const { code, output } = await run('npm', ['test'], dir)
      expect(code, output).to.equal(0)
      const passing = /(\d+) passing/.exec(output)
      expect(Number(passing?.[1]), output).to.be.at.least(3)
      expect(output).not.to.match(/\d+ failing/)
    })
  }

  it("type-checks each example (// @ts-check JavaScript) against the installed udsu's types", async () => {
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          allowJs: true,
          checkJs: true,
          noEmit: true,
          strict: true,
          skipLibCheck: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          // The project brings its own @types/node, as every Node project does; here the repository's. The package's own
          // declarations are checked by test/package/pack.test.ts: skipLibCheck keeps this one quick.
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: [
          ...EXAMPLES.map((name) => `node_modules/udsu-plugin-${name}/index.js`),
          'udsu-plugin-signature/index.js',
        ],
      }),
    )
    await ok(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app)
  })

  it('udsu/testing loads with import as the same functions require() gives', async () => {
    const script = `
      import { createRequire } from 'node:module'
      import * as esm from 'udsu/testing'
      const cjs = createRequire(import.meta.url)('udsu/testing')
      console.log(JSON.stringify({ esm: Object.keys(esm).sort(), cjs: Object.keys(cjs).sort(), same: esm.createTestNetwork === cjs.createTestNetwork }))`
    const out = JSON.parse(await ok(process.execPath, ['--input-type=module', '-e', script], app))
    expect(out.esm).to.deep.equal(out.cjs)
    expect(out.esm).to.include.members(['createTestNetwork', 'describeTransportCompliance'])
    expect(out.same).to.equal(true)
  })

  it("docs/PLUGINS.md's walkthrough builds a plugin whose tests pass, that packs, and that udsu loads by name", async () => {
    expect([...walkthroughFiles().keys()].sort()).to.deep.equal(['index.js', 'package.json', 'test/signature.test.js'])
    const { code, output } = await run('npm', ['test'], docPlugin)
    expect(code, output).to.equal(0)
    expect(output).to.match(/2 passing/)
    expect(
      packed
        .find((p) => p.name === 'udsu-plugin-signature')
        ?.files.map((f) => f.path)
        .sort(),
    ).to.deep.equal(['index.js', 'package.json'])
    // The docs promise this exact refusal for a bad option, from the udsu command, naming the entry and the key.
    const plugins = [
      'udp',
      'hole-punch',
      'rsa',
      'reliable',
      { resolve: 'udsu-plugin-signature', options: { signature: 42 } },
    ]
    fs.writeFileSync(path.join(app, 'bad-signature.json'), JSON.stringify({ plugins, frontend: 'none' }))
    const cli = path.join(app, 'node_modules', 'udsu', 'dist', 'cli', 'index.js')
    const bad = await run(process.execPath, [cli, '--config', 'bad-signature.json', '--name', 'ann'], app)
    expect(bad.code, bad.output).to.equal(2)
    expect(bad.output).to.contain('plugins[4] (signature).options.signature must be a string, not number')
  })

  describe('a client process whose udsu.config.js names all three by package name', () => {
    let net: TestNetwork
    let child: ChildProcessWithoutNullStreams | undefined

    before(async () => {
      net = await createTestNetwork()
    })
    after(async () => {
      child?.kill()
      await net?.close()
    })

    it("loads them, and a peer sees the bot's reply filtered, the notifier's line written and /echo answered", async () => {
      const inbox = path.join(app, 'inbox.log')
      fs.writeFileSync(
        path.join(app, 'udsu.config.js'),
        `module.exports = {
        server: ${JSON.stringify(net.server)},
        frontend: 'headless',
        plugins: [
          { resolve: 'udp', options: { host: '127.0.0.1' } },
          'hole-punch',
          { resolve: 'rsa', options: { bits: 2048 } },
          'reliable',
          { resolve: 'udsu-plugin-echo-bot', options: { prefix: 'bot says: ' } },
          { resolve: 'udsu-plugin-banned-words', options: { words: ['darn'] } },
          { resolve: 'udsu-plugin-notifier', options: { file: 'inbox.log' } },
        ],
        log: { level: 'warn' },
      }\n`,
      )
      const profile = fs.mkdtempSync(path.join(work, 'profile-'))
      const cli = path.join(app, 'node_modules', 'udsu', 'dist', 'cli', 'index.js')
      const started = spawn(process.execPath, [cli, '--name', 'botty', '--profile', profile], { cwd: app })
      child = started
      const events: Array<Record<string, unknown>> = []
      const waiters: Array<() => void> = []
      let stderr = ''
      started.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()))
      readline.createInterface({ input: started.stdout }).on('line', (line) => {
        events.push(JSON.parse(line))
        for (const wake of waiters.splice(0)) wake()
      })
      const exited = new Promise<number | null>((resolve) => started.on('exit', resolve))
      /** The first event (past or future) that matches; fails with the process's output if it exits first. */
      const event = async (
        match: (e: Record<string, unknown>) => boolean,
        what: string,
      ): Promise<Record<string, unknown>> => {
        for (;;) {
          const found = events.find(match)
          if (found) return found
          const code = await Promise.race([
            new Promise<'more'>((resolve) => waiters.push(() => resolve('more'))),
            exited,
          ])
          if (code !== 'more')
            throw new Error(
              `the client exited with ${code} before ${what}\nstdout: ${JSON.stringify(events)}\nstderr: ${stderr}`,
            )
        }
      }

      await event((e) => e.type === 'ready', 'it was ready')
      const bob = await net.client('bob')
      await bob.send('botty', 'well darn')
      // The echo bot's reply goes through the banned-words filter on its way out.
      expect((await bob.next('message')).text).to.equal('bot says: well ****')
      // The filter masks what comes in too (`incoming`, before `deliver`): the notifier writes what the user is shown.
      expect(fs.readFileSync(inbox, 'utf8')).to.match(/Z bob: well \*\*\*\*\n$/)

      started.stdin.write(JSON.stringify({ type: 'command', line: '/echo hi' }) + '\n')
      expect(await event((e) => e.type === 'info', 'it answered /echo')).to.deep.equal({
        type: 'info',
        text: 'bot says: hi',
      })
      started.stdin.write(JSON.stringify({ type: 'quit' }) + '\n')
      expect(await exited, stderr).to.equal(0)
      child = undefined
    })
  })
})
