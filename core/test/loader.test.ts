// loadPlugins: built-ins by short name, plugins by path, and every loading problem named by its entry.
import { expect } from 'chai'
import * as path from 'node:path'
import { ConfigError, DEFAULT_CONFIG, loadConfig, type Config, type PluginEntry } from '../config'
import { loadPlugins } from '../loader'
import { definePlugin, API_VERSION } from '../plugin'
import { removeTempDirs, ROOT, tempDir, thrown, writeFiles } from './support'

const config = (plugins: Array<string | PluginEntry>, extra: Partial<Config> = {}): Config => ({
  ...DEFAULT_CONFIG,
  frontend: 'headless',
  plugins: plugins.map((p) => (typeof p === 'string' ? { resolve: p, options: {} } : p)),
  source: '/nowhere/udsu.config.js',
  ...extra,
})

/** The problems loadPlugins reports; fails if it loads. */
function problemsOf(c: Config): string[] {
  const error = thrown(() => loadPlugins(c))
  expect(error).to.be.instanceOf(ConfigError)
  expect((error as ConfigError).source).to.equal(c.source)
  return (error as ConfigError).problems
}

/** A project dir with a config file (so relative plugin paths resolve from it) and the given plugin modules. */
async function project(files: Record<string, string>, plugins: unknown[]): Promise<Config> {
  const dir = tempDir('udsu-loader-test-')
  writeFiles(dir, { ...files, '.udsurc.json': JSON.stringify({ plugins }) })
  return loadConfig({}, dir)
}

const TRANSPORT_PLUGIN = `module.exports = { name: 'fake-transport', provides: ['transport'], create() {} }\n`

describe('core/loader loadPlugins', () => {
  afterEach(removeTempDirs)

  it('resolves the built-in short names and checks their options, filling defaults', () => {
    const loaded = loadPlugins(config(['udp', { resolve: 'hole-punch', options: { keepaliveMs: 5000 } }, 'rsa']))
    expect(loaded.map((p) => p.definition.name)).to.deep.equal(['udp', 'hole-punch', 'rsa', 'headless'])
    expect(loaded[0].options).to.deep.equal({ host: '0.0.0.0', port: 0 })
    expect(loaded[1].options).to.include({ keepaliveMs: 5000, punchTimeoutMs: 10_000, embeddedServer: true })
    for (const { definition } of loaded) expect(definition.create).to.be.a('function')
  })

  it('loads the plugins of the udsu.config.js shipped in the repository', async () => {
    const loaded = loadPlugins(await loadConfig({ config: path.join(ROOT, 'udsu.config.js') }, ROOT))
    expect(loaded.map((p) => p.definition.name)).to.deep.equal([
      'udp',
      'hole-punch',
      'embedded-server',
      'rsa',
      'reliable',
      'history',
      'tui',
    ])
    expect(loaded[1].options).to.include({ keepaliveMs: 15000 })
  })

  it("loads a plugin by a path relative to the config file, and its capability meets another plugin's need", async () => {
    const c = await project({ 'lib/fake-transport.js': TRANSPORT_PLUGIN }, ['./lib/fake-transport.js', 'hole-punch'])
    const loaded = loadPlugins(c)
    expect(loaded.map((p) => p.definition.name)).to.deep.equal([
      'fake-transport',
      'hole-punch',
      DEFAULT_CONFIG.frontend,
    ])
    expect(loaded[0].options).to.deep.equal({})
  })

  it('loads a plugin by absolute path, and one that is a default export', () => {
    const dir = tempDir('udsu-loader-test-')
    writeFiles(dir, {
      'esm-shaped.js': `Object.defineProperty(exports, '__esModule', { value: true }); exports.default = { name: 'esm-shaped', create() {} }\n`,
    })
    const loaded = loadPlugins(config(['udp', path.join(dir, 'esm-shaped.js')]))
    expect(loaded.map((p) => p.definition.name)).to.deep.equal(['udp', 'esm-shaped', 'headless'])
  })

  it("passes a plugin's options through its own check", async () => {
    const c = await project(
      {
        'strict.js': `module.exports = { name: 'strict', options: (raw) => raw.level > 0 ? { value: { level: raw.level * 2 } } : { problems: ['level must be positive'] }, create() {} }\n`,
      },
      [{ resolve: './strict.js', options: { level: 3 } }],
    )
    expect(loadPlugins(c)[0].options).to.deep.equal({ level: 6 })
  })

  it('reports an unknown plugin name, listing the built-ins', () => {
    const problems = problemsOf(config(['udp', 'hole-pnuch']))
    expect(problems).to.have.length(1)
    expect(problems[0]).to.match(/^plugins\[1\]: no plugin "hole-pnuch" \(built-in: .*; or a package name or a path\)$/)
    for (const name of ['udp', 'hole-punch', 'rsa', 'headless']) expect(problems[0]).to.contain(name)
  })

  it('reports an unknown frontend', () => {
    const problems = problemsOf(config(['udp'], { frontend: 'curses' }))
    expect(problems).to.have.length(1)
    expect(problems[0]).to.match(/^frontend: no plugin "curses"/)
  })

  it('reports a relative path that does not exist', async () => {
    const problems = problemsOf(await project({}, ['udp', './plugins/absent.js']))
    expect(problems).to.have.length(1)
    expect(problems[0]).to.match(/^plugins\[1\]: no plugin "\.\/plugins\/absent\.js"/)
  })

  it('reports a module that does not export a plugin', async () => {
    const problems = problemsOf(
      await project({ 'not-a-plugin.js': `module.exports = { hello: 'world' }\n` }, ['udp', './not-a-plugin.js']),
    )
    expect(problems).to.deep.equal([
      'plugins[1]: "./not-a-plugin.js" does not export a plugin (an object with name and create)',
    ])
  })

  it('reports a module that throws while loading, with its message', async () => {
    const problems = problemsOf(
      await project({ 'broken.js': `throw new Error('needs LIBFOO')\n` }, ['udp', './broken.js']),
    )
    expect(problems).to.have.length(1)
    expect(problems[0]).to.match(/^plugins\[1\]: plugin "\.\/broken\.js" failed to load: needs LIBFOO/)
  })

  it('reports invalid options of every plugin at once, naming the entry, the plugin and the key', () => {
    const problems = problemsOf(
      config([
        { resolve: 'udp', options: { port: 70000 } },
        { resolve: 'hole-punch', options: { keepaliveMs: 'soon', keepAlive: 1 } },
        { resolve: 'rsa', options: ['bits'] },
      ]),
    )
    expect(problems).to.deep.equal([
      'plugins[0] (udp).options.port must be at most 65535',
      'plugins[1] (hole-punch).options.keepAlive is not a known option (did you mean "keepaliveMs"?)',
      'plugins[1] (hole-punch).options.keepaliveMs must be a number, not "soon"',
      'plugins[2] (rsa).options must be an object, not a list',
    ])
  })

  it('refuses a plugin built for another plugin API, and takes one of this API or none declared', () => {
    const dir = tempDir('udsu-loader-test-')
    writeFiles(dir, {
      'old.js': `module.exports = { name: 'old', apiVersion: 0, create() {} }\n`,
      'current.js': `module.exports = { name: 'current', apiVersion: ${API_VERSION}, create() {} }\n`,
      'plain.js': `module.exports = { name: 'plain', create() {} }\n`,
    })
    expect(problemsOf(config([path.join(dir, 'old.js')]))).to.deep.equal([
      `plugins[0]: plugin "old" was built for udsu plugin API 0, and this udsu has API ${API_VERSION}: install a version of the plugin made for this udsu`,
    ])
    const loaded = loadPlugins(config([path.join(dir, 'current.js'), path.join(dir, 'plain.js')]))
    expect(loaded.map((p) => p.definition.name)).to.deep.equal(['current', 'plain', 'headless'])
    // definePlugin records the API of the udsu it came from.
    expect(definePlugin({ name: 'x', create() {} }).apiVersion).to.equal(API_VERSION)
  })

  it('reports a plugin listed twice', () => {
    const problems = problemsOf(config(['udp', 'rsa', 'udp']))
    expect(problems).to.deep.equal(['plugins[2]: plugin "udp" is listed twice'])
  })

  it('reports a need no plugin provides', () => {
    const problems = problemsOf(config(['hole-punch', 'rsa']))
    expect(problems).to.have.length(1)
    expect(problems[0]).to.contain('plugin "hole-punch" needs a plugin that provides "transport"')
  })
})
