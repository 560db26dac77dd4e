// `udsu server`'s settings: the `server` section of the config file (the client's search), flags over it, every problem
// named with the file and the key; the defaults are the ones server/README.md lists; a bad file exits 2.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { ConfigError } from '../../core/errors'
import { rejection } from '../../core/test/support'
import { ServerProcess, tempDir, trackProcesses } from '../../test/support/processes'
import { loadServerSettings, parseServerFlags, SERVER_DEFAULTS } from '../options'
import { runCli, UdpPeer } from './operator-support'
import { publicPem } from '../../core/test/support'
import { ephemeralKey, HELLO_PAD } from '../../protocol'

function projectWith(files: Record<string, string>): string {
  const dir = tempDir('udsu-server-config-')
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"ops"}')
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return dir
}

const overridesOf = (argv: string[]) => {
  const parsed = parseServerFlags(argv)
  if (parsed.help) throw new Error('unexpected --help')
  return parsed
}

describe('udsu server settings', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('are the documented defaults without a file', async () => {
    expect(await loadServerSettings(undefined, {}, projectWith({}))).to.deep.equal(SERVER_DEFAULTS)
  })

  it("come from the server section found by the client's search, with flags over them", async () => {
    const dir = projectWith({
      'udsu.config.js': `module.exports = { name: 'alice', server: { port: 9000, relay: true, limits: { perSecond: 7 }, log: { format: 'json', level: 'warn' }, watches: { perClient: 4 } } }`,
    })
    const { overrides } = overridesOf(['--port', '9001', '--log-level', 'debug', '--log-redact'])
    const settings = await loadServerSettings(undefined, overrides, dir)
    expect(settings.port).to.equal(9001)
    expect(settings.relay).to.equal(true)
    expect(settings.limits).to.deep.equal({ ...SERVER_DEFAULTS.limits, perSecond: 7 })
    expect(settings.log).to.deep.equal({ level: 'debug', format: 'json', redact: true })
    expect(settings.watches).to.deep.equal({ ...SERVER_DEFAULTS.watches, perClient: 4 })
  })

  it('ignore a client\'s "HOST:PORT" under server, so a checkout\'s client config does not stop the server', async () => {
    const dir = projectWith({ '.udsurc.json': JSON.stringify({ server: '127.0.0.1:7777', frontend: 'tui' }) })
    expect(await loadServerSettings(undefined, {}, dir)).to.deep.equal(SERVER_DEFAULTS)
  })

  it('name the file and every bad key at once, with "did you mean"', async () => {
    const dir = projectWith({
      'udsu.config.json': JSON.stringify({
        server: {
          ttlMs: 10,
          port: '7777',
          altPort: true,
          limits: { perSecnd: 5 },
          log: { format: 'xml' },
          metrics: '9464',
        },
      }),
    })
    const error = await rejection(loadServerSettings('udsu.config.json', {}, dir))
    expect(error).to.be.instanceOf(ConfigError)
    expect((error as ConfigError).source).to.equal(path.join(dir, 'udsu.config.json'))
    expect((error as ConfigError).problems).to.have.members([
      'server.port must be a number, not "7777"',
      'server.altPort must be a port number or false',
      'server.metrics must be HOST:PORT with a decimal port from 0 to 65535 (e.g. 127.0.0.1:9464), not "9464"',
      'server.log.format must be one of human, json, not "xml"',
      'server.ttlMs must be at least 1000',
      'server.limits.perSecnd is not a known option (did you mean "perSecond"?)',
    ])
  })

  it('server/README.md lists every setting with its default', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'server', 'README.md'), 'utf8')
    const flat = (value: object, prefix = ''): Array<[string, unknown]> =>
      Object.entries(value).flatMap(([key, v]) =>
        typeof v === 'object' && v !== null
          ? flat(v as object, `${prefix}${key}.`)
          : [[`${prefix}${key}`, v] as [string, unknown]],
      )
    const rows = readme.split('\n').filter((line) => line.startsWith('| `'))
    for (const [key, value] of flat(SERVER_DEFAULTS)) {
      const row = rows.find((r) => r.startsWith(`| \`${key}\` |`))
      expect(row, `a row for ${key}`).to.not.equal(undefined)
      expect(row!.split('|')[3].trim(), key).to.equal(`\`${JSON.stringify(value)}\``)
    }
    for (const key of ['altPort', 'metrics', 'log.file'])
      expect(
        rows.some((r) => r.startsWith(`| \`${key}\` |`)),
        key,
      ).to.equal(true)
  })

  it("admission's limits come from the file: past `admission.maxPending` registrations waiting for their proof, one more gets `full`", async () => {
    const dir = projectWith({
      '.udsurc.json': JSON.stringify({
        server: { admission: { maxPending: 2, cookieMs: 5000 }, redis: 'redis://cache.internal:6379' },
      }),
    })
    const settings = await loadServerSettings(undefined, {}, dir)
    expect(settings.admission).to.deep.equal({
      maxPending: 2,
      pendingMs: SERVER_DEFAULTS.admission.pendingMs,
      cookieMs: 5000,
    })
    expect(settings.redis).to.equal('redis://cache.internal:6379')
    const bad = projectWith({
      '.udsurc.json': JSON.stringify({ server: { admission: { pendingMs: 10 }, redis: 'cache:6379' } }),
    })
    const problems = await rejection(loadServerSettings(undefined, {}, bad))
    expect(problems.message).to.include('server.admission.pendingMs must be at least 1000')
    expect(problems.message).to.include('server.redis must be redis://HOST:PORT')

    const running = projectWith({ 'udsu.config.json': JSON.stringify({ server: { admission: { maxPending: 2 } } }) })
    const server = track(await ServerProcess.start({ args: ['--config', path.join(running, 'udsu.config.json')] }))
    // Three clients stop after their challenge (well within the per-address rate of registration steps).
    const peers = await Promise.all([1, 2, 3].map(() => UdpPeer.open({ address: '127.0.0.1', port: server.port })))
    try {
      const answers = []
      for (const [i, peer] of peers.entries()) {
        const cookie = await peer.request({ t: 'hello', pad: HELLO_PAD })
        answers.push(
          await peer.request({
            t: 'register',
            cookie: cookie.cookie,
            name: `waiting${i}`,
            key: publicPem('alice'),
            local: [],
            eph: ephemeralKey().public,
          }),
        )
      }
      expect(answers.map((a) => (a.t === 'error' ? a.code : a.t))).to.deep.equal(['challenge', 'challenge', 'full'])
    } finally {
      for (const peer of peers) peer.close()
    }
  })

  it('a bad config file stops `udsu server` with exit 2 and the problems; a good one is what it runs with', async () => {
    const bad = projectWith({ '.udsurc.json': JSON.stringify({ server: { relay: 'yes' } }) })
    const run = await runCli(['server', '--host', '127.0.0.1', '--port', '0'], { cwd: bad })
    expect(run.code).to.equal(2)
    expect(run.stderr).to.equal(
      `udsu: ${path.join(bad, '.udsurc.json')} is invalid:\n  - server.relay must be true or false, not "yes"\n`,
    )

    const missing = await runCli(['server', '--config', path.join(bad, 'nowhere.json')])
    expect(missing.code).to.equal(2)
    expect(missing.stderr).to.include('nowhere.json is invalid:\n  - could not be read')

    const good = projectWith({ 'udsu.config.json': JSON.stringify({ server: { relay: true, ttlMs: 20_000 } }) })
    const server = track(await ServerProcess.start({ args: ['--config', path.join(good, 'udsu.config.json')] }))
    const peer = await UdpPeer.open({ address: '127.0.0.1', port: server.port })
    try {
      const registered = await peer.register('alice')
      expect(registered).to.include({ t: 'registered', ttlMs: 20_000, relay: true })
    } finally {
      peer.close()
    }
  })
})
