// The package as users get it: `npm pack`, installed from the tarball into an empty project, then loaded there from
// CommonJS, from an ES module, from TypeScript with NodeNext, and through its `udsu` command.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ROOT } from '../support/processes'

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command to its end (no shell); never rejects, so a test can assert on the code and show the output. */
function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}\n${error.message}` : stderr })
    })
  })
}

/** Runs a command that must succeed; its output goes into the failure message otherwise. */
async function ok(command: string, args: string[], cwd: string, timeoutMs?: number): Promise<string> {
  const result = await run(command, args, cwd, timeoutMs)
  expect(
    result.code,
    `${command} ${args.join(' ')} exited with ${result.code}\n${result.stdout}\n${result.stderr}`,
  ).to.equal(0)
  return result.stdout
}

const NODE = process.execPath
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version

describe('the npm package, installed from its tarball', function () {
  // One pack and one install (the registry is asked for the dependencies), shared by every test below.
  this.timeout(300_000)
  let work: string
  let app: string
  let files: string[]

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-pack-test-'))
    app = path.join(work, 'app')
    // Packs the dist/ that `npm test` just built; --ignore-scripts keeps `prepare` from rebuilding it under mocha.
    const packed = JSON.parse(
      await ok('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT),
    ) as Array<{
      filename: string
      files: Array<{ path: string }>
    }>
    files = packed[0].files.map((f) => f.path)
    fs.mkdirSync(app)
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'udsu-consumer', private: true, type: 'module' }),
    )
    // No install scripts: this checks what the package holds and how it loads, not native builds of its dependencies.
    await ok(
      'npm',
      ['install', '--no-audit', '--no-fund', '--ignore-scripts', path.join(work, packed[0].filename)],
      app,
      240_000,
    )
  })

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  it("ships the runtime build, its types and the docs, and nothing of the repository's own", () => {
    for (const file of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'docs/PLUGINS.md',
      'dist/core/index.js',
      'dist/core/index.mjs',
      'dist/core/index.d.ts',
      'dist/core/index.d.mts',
      'dist/cli/index.js',
      'dist/server/index.js',
      'dist/plugins/udp/index.js',
      'dist/testing/index.js',
      'dist/testing/index.mjs',
      'dist/testing/index.d.ts',
      'dist/plugins/hole-punch/index.js',
      'dist/plugins/rsa/index.js',
      'dist/plugins/reliable/index.js',
      'dist/frontends/headless/index.js',
      'dist/frontends/tui/index.js',
      'dist/plugins/history/index.js',
      'dist/docs/history-export.schema.json',
      'dist/frontends/web/index.js',
      'dist/frontends/web/renderer/app.js',
      'frontends/web/renderer/index.html',
      'frontends/web/renderer/style.css',
      'dist/frontends/gui/main.js',
      'dist/frontends/gui/preload.js',
    ]) {
      expect(files, file).to.include(file)
    }
    const unwanted = files.filter(
      (file) =>
        /(^|\/)(test|tests|bench|fixtures)\//.test(file) ||
        /\.test\.|\.pem$|\.map$/.test(file) ||
        (/\.[cm]?ts$/.test(file) && !/\.d\.[cm]?ts$/.test(file)) ||
        /^(udsu\.config\.js|\.udsurc.*|tsconfig.*\.json|\.ci\/.*|\.mocharc.*|eslint\.config\..*)$/.test(file),
    )
    expect(unwanted).to.deep.equal([])
  })

  it('loads with require(), and keeps the internals out of reach', async () => {
    const out = await ok(
      NODE,
      [
        '-e',
        `
      const udsu = require('udsu')
      let deep
      try { require('udsu/dist/core/client'); deep = 'loaded' } catch (error) { deep = error.code }
      const veto = new udsu.Veto('too long')
      console.log(JSON.stringify({
        definePlugin: typeof udsu.definePlugin, api: udsu.API_VERSION, veto: veto instanceof Error && veto.message,
        cancelled: new udsu.Cancelled() instanceof udsu.Veto, deep, version: require('udsu/package.json').version,
      }))`,
      ],
      app,
    )
    expect(JSON.parse(out)).to.deep.equal({
      definePlugin: 'function',
      api: 1,
      veto: 'too long',
      cancelled: true,
      deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
      version: VERSION,
    })
  })

  it('loads with import, as the same classes require() gives', async () => {
    fs.writeFileSync(
      path.join(app, 'esm.js'),
      `
      import { createRequire } from 'node:module'
      import * as esm from 'udsu'
      import { definePlugin, Veto } from 'udsu'
      const cjs = createRequire(import.meta.url)('udsu')
      const plugin = definePlugin({ name: 'esm-plugin', create() {} })
      console.log(JSON.stringify({
        plugin: plugin.name,
        sameVeto: Veto === cjs.Veto,
        exports: Object.keys(esm).sort(),
        cjsExports: Object.keys(cjs).sort(),
      }))
    `,
    )
    const out = JSON.parse(await ok(NODE, ['esm.js'], app))
    expect(out.plugin).to.equal('esm-plugin')
    expect(out.sameVeto).to.equal(true)
    expect(out.exports).to.deep.equal(out.cjsExports)
    expect(out.exports).to.include.members(['API_VERSION', 'Cancelled', 'Veto', 'definePlugin', 'validate'])
  })

  it('type-checks a plugin written in TypeScript with NodeNext and "type": "module", and runs it', async () => {
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          outDir: 'out',
          // The consumer brings its own @types/node, as every Node project does; here the repository's. Declarations are
          // checked too (no skipLibCheck), so the package's own .d.ts/.d.mts must be valid under NodeNext.
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['length-limit.ts', 'common.cts'],
      }),
    )
    // The docs' example, plus a service offered to other plugins through declaration merging.
    fs.writeFileSync(
      path.join(app, 'length-limit.ts'),
      `
      import { API_VERSION, definePlugin, number, object, optional, validate, Veto, type CoreServices } from 'udsu'

      export interface Counter { count(): number }
      declare module 'udsu' { interface ServiceMap { counter: Counter } }

      const optionsSchema = object({ maxLength: optional(number({ min: 1, integer: true }), 500) })

      const plugin = definePlugin<{ maxLength: number }, Pick<CoreServices, 'hooks' | 'commands' | 'services'>>({
        name: 'length-limit',
        options: (raw) => validate(optionsSchema, raw),
        create({ hooks, commands, services }, options) {
          let refused = 0
          services.provide('counter', { count: () => refused }, 'length-limit')
          const counter: Counter | undefined = services.get('counter')
          void counter
          hooks.compose.tapPromise('length-limit', async (message) => {
            if (message.text.length > options.maxLength) {
              refused++
              throw new Veto(\`longer than \${options.maxLength} characters\`)
            }
            return message
          })
          commands.register({ name: 'limit', usage: '/limit', description: 'shows the length limit', run: (_, out) => out.info(String(options.maxLength)) })
        },
      })
      export default plugin

      // The types are real, not \`any\`: each of these must be an error (never run).
      export function misuse(deps: Pick<CoreServices, 'services' | 'hooks'>) {
        // @ts-expect-error a reason is a string
        new Veto(42)
        // @ts-expect-error no plugin declared this service
        deps.services.get('nothing')
        // @ts-expect-error compose taps receive a ChatMessage
        deps.hooks.compose.tap('x', (message: number) => message)
      }

      const checked = typeof plugin.options === 'function' ? plugin.options({ maxLength: 'x' }) : undefined
      console.log(JSON.stringify({ api: API_VERSION, name: plugin.name, checked }))
    `,
    )
    fs.writeFileSync(
      path.join(app, 'common.cts'),
      `
      import udsu = require('udsu')
      export const veto: udsu.Veto = new udsu.Cancelled()
    `,
    )
    await ok(NODE, [TSC, '-p', app], app)
    const out = JSON.parse(await ok(NODE, [path.join('out', 'length-limit.js')], app))
    expect(out).to.deep.equal({
      api: 1,
      name: 'length-limit',
      checked: { problems: ['maxLength must be a number, not "x"'] },
    })
  })

  it('installs the udsu command, which answers --version and loads built-in and ES module plugins', async () => {
    expect((await ok('npx', ['--no', '--', 'udsu', '--version'], app)).trim()).to.equal(VERSION)
    // The built-ins that read files beside their code find them in the package: history's export schema, the web page.
    const installed = path.join(app, 'node_modules', 'udsu')
    await ok('node', ['-e', `require(${JSON.stringify(path.join(installed, 'dist/plugins/history/import.js'))})`], app)
    const assets = require(path.join(installed, 'dist/frontends/web/assets.js')) as {
      RENDERER_FILES: Record<string, { file(): string }>
    }
    for (const [name, { file }] of Object.entries(assets.RENDERER_FILES))
      expect(fs.existsSync(file()), `the web page's ${name || 'index.html'}`).to.equal(true)
    // A third-party plugin as an ES module importing 'udsu'; its options problem proves it was loaded and checked.
    fs.writeFileSync(
      path.join(app, 'limit.js'),
      `
      import { definePlugin, number, object, validate } from 'udsu'
      export default definePlugin({ name: 'limit', options: (raw) => validate(object({ maxLength: number() }), raw), create() {} })
    `,
    )
    const plugins = ['udp', 'hole-pnuch', { resolve: './limit.js', options: { maxLength: 'x' } }]
    fs.writeFileSync(path.join(app, 'bad.json'), JSON.stringify({ plugins, frontend: 'none' }))
    const bad = await run('npx', ['--no', '--', 'udsu', '--config', 'bad.json', '--name', 'ann'], app)
    expect(bad.code, bad.stderr).to.equal(2)
    expect(bad.stderr).to.match(/plugins\[1\]: no plugin "hole-pnuch" \(built-in: [^)]*\bhole-punch\b[^)]*\bheadless\b/)
    expect(bad.stderr).to.contain('plugins[2] (limit).options.maxLength must be a number, not "x"')
  })
})
