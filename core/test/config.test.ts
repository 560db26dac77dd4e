// loadConfig: where the config comes from, how flags override it, and how every problem is named at once.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../config'
import { loadPlugins } from '../loader'
import { rejection, removeTempDirs, ROOT, tempDir, writeFiles } from './support'

/** The problems of a ConfigError; fails on any other outcome. */
async function problemsOf(promise: Promise<unknown>): Promise<{ error: ConfigError; problems: string[] }> {
  const error = await rejection(promise)
  expect(error).to.be.instanceOf(ConfigError)
  return { error: error as ConfigError, problems: (error as ConfigError).problems }
}

describe('core/config loadConfig', () => {
  afterEach(removeTempDirs)

  describe('finding the file', () => {
    it('reads udsu.config.js in the directory', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        'udsu.config.js': `module.exports = { name: 'alice', server: '10.0.0.5:9000', log: { level: 'warn' } }\n`,
      })
      const config = await loadConfig({}, dir)
      expect(config).to.include({ name: 'alice', server: '10.0.0.5:9000', source: path.join(dir, 'udsu.config.js') })
      expect(config.log.level).to.equal('warn')
      // Keys the file leaves out keep their defaults.
      expect(config.frontend).to.equal(DEFAULT_CONFIG.frontend)
      expect(config.plugins).to.deep.equal(DEFAULT_CONFIG.plugins)
    })

    it('reads .udsurc.json', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({
          server: 'example.org:4000',
          plugins: ['udp', { resolve: 'rsa', options: { bits: 2048 } }],
        }),
      })
      const config = await loadConfig({}, dir)
      expect(config.server).to.equal('example.org:4000')
      expect(config.plugins).to.deep.equal([
        { resolve: 'udp', options: {} },
        { resolve: 'rsa', options: { bits: 2048 } },
      ])
      expect(config.source).to.equal(path.join(dir, '.udsurc.json'))
    })

    it('reads .udsurc written as YAML', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc': 'name: bob\nserver: 127.0.0.1:7000\nlog:\n  level: debug\n  file: /tmp/udsu.log\n' })
      const config = await loadConfig({}, dir)
      expect(config).to.include({ name: 'bob', server: '127.0.0.1:7000', source: path.join(dir, '.udsurc') })
      expect(config.log).to.deep.equal({ level: 'debug', file: '/tmp/udsu.log' })
    })

    it('reads .udsurc written as JSON', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc': '{ "name": "carol", "frontend": "tui" }' })
      const config = await loadConfig({}, dir)
      expect(config).to.include({ name: 'carol', frontend: 'tui' })
    })

    it('reads the udsu key of package.json', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        'package.json': JSON.stringify({ name: 'my-bot', udsu: { name: 'dave', server: '192.168.1.2:7777' } }),
      })
      const config = await loadConfig({}, dir)
      expect(config).to.include({ name: 'dave', server: '192.168.1.2:7777', source: path.join(dir, 'package.json') })
    })

    it('searches up from a subdirectory to the project root', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        'package.json': JSON.stringify({ name: 'project' }),
        '.udsurc.json': JSON.stringify({ name: 'erin' }),
        'src/deep/keep': '',
      })
      const config = await loadConfig({}, path.join(dir, 'src', 'deep'))
      expect(config.name).to.equal('erin')
      expect(config.source).to.equal(path.join(dir, '.udsurc.json'))
    })

    it('does not search above the project root (the directory with package.json)', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({ name: 'outside' }),
        'project/package.json': JSON.stringify({ name: 'project' }),
      })
      const config = await loadConfig({}, path.join(dir, 'project'))
      expect(config.name).to.equal(undefined)
      expect(config.source).to.equal('the built-in defaults')
    })

    it('loads the file named by --config, relative to cwd, ahead of any file it would find', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        'udsu.config.js': `module.exports = { name: 'found' }\n`,
        'configs/work.json': JSON.stringify({ name: 'given', server: '10.1.1.1:1234' }),
      })
      const config = await loadConfig({ config: 'configs/work.json' }, dir)
      expect(config).to.include({
        name: 'given',
        server: '10.1.1.1:1234',
        source: path.join(dir, 'configs', 'work.json'),
      })
    })

    it('applies the defaults when no file is found', async () => {
      const dir = tempDir()
      const config = await loadConfig({}, dir)
      expect(config.source).to.equal('the built-in defaults')
      expect(config.name).to.equal(undefined)
      expect(config).to.include({ server: DEFAULT_CONFIG.server, frontend: DEFAULT_CONFIG.frontend })
      expect(config.plugins.map((p) => p.resolve)).to.deep.equal([
        'udp',
        'hole-punch',
        'embedded-server',
        'rsa',
        'reliable',
        'history',
      ])
      expect(config.log.level).to.equal('info')
    })

    it('applies the defaults for an empty file given by --config, naming the file as the source', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': '' })
      const config = await loadConfig({ config: '.udsurc.json' }, dir)
      expect(config.source).to.equal(path.join(dir, '.udsurc.json'))
      expect(config.server).to.equal(DEFAULT_CONFIG.server)
    })

    it('accepts the udsu.config.js shipped in the repository', async () => {
      const config = await loadConfig({ config: path.join(ROOT, 'udsu.config.js') }, ROOT)
      expect(config.plugins.map((p) => p.resolve)).to.deep.equal([
        'udp',
        'hole-punch',
        'embedded-server',
        'rsa',
        'reliable',
        'history',
      ])
      expect(config.server).to.equal('127.0.0.1:7777')
      expect(config.frontend).to.equal('tui')
    })
  })

  describe('command-line flags', () => {
    it('override the values in the file and keep the rest', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({
          name: 'alice',
          server: '10.0.0.1:7777',
          profile: '/profiles/alice',
          frontend: 'tui',
          log: { level: 'warn', file: '/tmp/a.log' },
        }),
      })
      const config = await loadConfig(
        { name: 'bob', server: '127.0.0.1:9999', profile: '/profiles/bob', frontend: 'headless', logLevel: 'debug' },
        dir,
      )
      expect(config).to.include({
        name: 'bob',
        server: '127.0.0.1:9999',
        profile: '/profiles/bob',
        frontend: 'headless',
      })
      expect(config.log).to.deep.equal({ level: 'debug', file: '/tmp/a.log' })
    })

    it("--web-port sets the frontend's port over frontendOptions from the file, keeping its other options", async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({ frontend: 'web', frontendOptions: { port: 8080, theme: 'dark' } }),
      })
      expect((await loadConfig({}, dir)).frontendOptions).to.deep.equal({ port: 8080, theme: 'dark' })
      expect((await loadConfig({ webPort: 0 }, dir)).frontendOptions).to.deep.equal({ port: 0, theme: 'dark' })
    })

    it("reports a bad frontend option with the frontend's own check, naming the key", async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': JSON.stringify({ frontend: 'web', frontendOptions: { port: 'soon' } }) })
      const { problems } = await problemsOf(loadConfig({}, dir).then(loadPlugins))
      expect(problems).to.deep.equal(['frontend (web).options.port must be a number, not "soon"'])
    })

    it('apply over the defaults when there is no file', async () => {
      const config = await loadConfig({ name: 'zoë', logLevel: 'silent' }, tempDir())
      expect(config.name).to.equal('zoë')
      expect(config.log.level).to.equal('silent')
    })

    it('are validated like the file', async () => {
      const { problems } = await problemsOf(loadConfig({ server: 'nowhere', logLevel: 'loud' }, tempDir()))
      expect(problems).to.have.length(2)
      expect(problems[0]).to.match(/^server "nowhere" is not host:port/)
      expect(problems[1]).to.match(/^log\.level must be one of debug, info, warn, error, silent, not "loud"/)
    })
  })

  describe('problems', () => {
    it('are all reported at once, each naming its key, with "did you mean" for a typo', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({
          sever: '127.0.0.1:7777',
          server: 'localhost:70000',
          name: 'two words',
          log: { level: 'debg', colour: true },
          plugins: ['udp', 7, { options: {} }],
        }),
      })
      const { error, problems } = await problemsOf(loadConfig({}, dir))
      expect(error.source).to.equal(path.join(dir, '.udsurc.json'))
      expect(error.message).to.contain(`${path.join(dir, '.udsurc.json')} is invalid`)
      expect(problems).to.have.members([
        'sever is not a known option (did you mean "server"?)',
        'name must be 1 to 32 letters, digits, "_", "." or "-", not "two words"',
        'server "localhost:70000" is not host:port (e.g. 127.0.0.1:7777)',
        'plugins[1] must be an object, not number',
        'plugins[2].resolve must be a string, not undefined',
        'log.colour is not a known option',
        'log.level must be one of debug, info, warn, error, silent, not "debg" (did you mean "debug"?)',
      ])
      for (const problem of problems) expect(error.message).to.contain(problem)
    })

    it("include the plugins' own option problems alongside the config's", async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({
          server: 'localhost:0',
          log: { level: 'verbose' },
          plugins: ['udp', 'rsa', { resolve: 'hole-punch', options: { keepaliveMs: 'soon' } }],
        }),
      })
      const { problems } = await problemsOf(loadConfig({}, dir))
      expect(problems).to.include('server "localhost:0" is not host:port (e.g. 127.0.0.1:7777)')
      expect(problems.some((p) => p.startsWith('log.level must be one of'))).to.equal(true)
      expect(problems).to.include('plugins[2] (hole-punch).options.keepaliveMs must be a number, not "soon"')
      expect(problems).to.have.length(3)
    })

    it('rejects a server without a port', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': JSON.stringify({ server: 'localhost' }) })
      const { problems } = await problemsOf(loadConfig({}, dir))
      expect(problems).to.deep.equal(['server "localhost" is not host:port (e.g. 127.0.0.1:7777)'])
    })

    it('takes several servers, as a list or comma-separated, each checked and named when wrong', async () => {
      const dir = tempDir()
      writeFiles(dir, {
        '.udsurc.json': JSON.stringify({ server: ['127.0.0.1:7777', 'b.example:7777#SHA256:' + 'A'.repeat(43)] }),
      })
      expect((await loadConfig({}, dir)).server).to.equal('127.0.0.1:7777,b.example:7777#SHA256:' + 'A'.repeat(43))
      expect((await loadConfig({ server: '127.0.0.1:1, 127.0.0.1:2' }, tempDir())).server).to.equal(
        '127.0.0.1:1, 127.0.0.1:2',
      )
      const bad = tempDir()
      writeFiles(bad, { '.udsurc.json': JSON.stringify({ server: ['127.0.0.1:7777', 'nowhere'] }) })
      expect((await problemsOf(loadConfig({}, bad))).problems).to.deep.equal([
        'server "nowhere" is not host:port (e.g. 127.0.0.1:7777)',
      ])
      const twice = tempDir()
      writeFiles(twice, { '.udsurc.json': JSON.stringify({ server: '127.0.0.1:1,127.0.0.1:1' }) })
      expect((await problemsOf(loadConfig({}, twice))).problems).to.deep.equal(['server names 127.0.0.1:1 twice'])
      const empty = tempDir()
      writeFiles(empty, { '.udsurc.json': JSON.stringify({ server: [] }) })
      expect((await problemsOf(loadConfig({}, empty))).problems).to.have.length(1)
    })

    it('rejects a server that is not a string', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': JSON.stringify({ server: 7777 }) })
      const { problems } = await problemsOf(loadConfig({}, dir))
      expect(problems).to.deep.equal(['server must be a string, not number'])
    })

    it('rejects a name that is too long or has spaces or slashes, and accepts letters of any script', async () => {
      for (const bad of ['a'.repeat(33), 'a b', '../etc', '']) {
        const { problems } = await problemsOf(loadConfig({ name: bad }, tempDir()))
        expect(problems, bad).to.have.length(1)
        expect(problems[0], bad).to.match(/^name must be 1 to 32 letters/)
      }
      for (const good of ['a'.repeat(32), 'Ünal_2.0', 'мария', 'x-y']) {
        expect((await loadConfig({ name: good }, tempDir())).name).to.equal(good)
      }
    })

    it('rejects a config that is not an object', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': '["udp"]' })
      const { problems } = await problemsOf(loadConfig({}, dir))
      expect(problems).to.deep.equal(['the value must be an object, not a list'])
    })

    it('names the file when a JS config throws while searching', async () => {
      const dir = tempDir()
      writeFiles(dir, { 'udsu.config.js': `throw new Error('no such variable HOME2')\n` })
      const { error, problems } = await problemsOf(loadConfig({}, dir))
      expect(error.source).to.equal(path.join(dir, 'udsu.config.js'))
      expect(error.message).to.contain(path.join(dir, 'udsu.config.js'))
      expect(problems).to.have.length(1)
      expect(problems[0]).to.contain('no such variable HOME2')
    })

    it('names the file when a JS config given by --config throws', async () => {
      const dir = tempDir()
      writeFiles(dir, { 'mine.config.js': `module.exports = require('./missing-helper')\n` })
      const { error, problems } = await problemsOf(loadConfig({ config: 'mine.config.js' }, dir))
      expect(error.source).to.equal(path.join(dir, 'mine.config.js'))
      expect(problems[0]).to.contain('missing-helper')
    })

    it('names the file when it is not valid JSON', async () => {
      const dir = tempDir()
      writeFiles(dir, { '.udsurc.json': '{ "name": "alice", }' })
      const { error } = await problemsOf(loadConfig({}, dir))
      expect(error.message).to.contain(path.join(dir, '.udsurc.json'))
    })

    it('names the file given by --config when it does not exist', async () => {
      const dir = tempDir()
      const { error } = await problemsOf(loadConfig({ config: 'absent.json' }, dir))
      expect(error.source).to.equal(path.join(dir, 'absent.json'))
      expect(fs.existsSync(path.join(dir, 'absent.json'))).to.equal(false)
    })
  })
})
