// Failures at start are failures: real `udsu` processes that cannot work stop with one line naming the plugin, the step
// and the cause, and a non-zero exit; refusals from a plugin with its own copy of Veto stop the message.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Veto } from '../../core/plugin'
import {
  HeadlessClient,
  ROOT,
  ServerProcess,
  tempDir,
  trackProcesses,
  writeConfig,
  type ClientOptions,
  type Event,
} from '../support/processes'

const FIXTURE_PLUGINS = path.join(ROOT, 'test', 'fixtures', 'plugins')
/** The CLI's exit status when a plugin failed at start (cli/index.ts, documented in --help and the README). */
const EXIT_PLUGIN_FAILED = 3
const EXIT_BAD_CONFIG = 2
/** No server is ever reached in the start failures below; an address that nothing answers is enough. */
const NOWHERE = '127.0.0.1:9'

interface Outcome {
  code: number | null
  events: Event[]
  stderr: string[]
  /** The CLI's own lines (`udsu: …`), as opposed to timestamped log lines. */
  said: string[]
  profile: string
}

async function runUntilExit(options: ClientOptions): Promise<Outcome> {
  const client = HeadlessClient.spawn(options)
  // 'close', not 'exit': by then stdout and stderr have given their last lines.
  const code = await new Promise<number | null>((resolve) => client.child.once('close', resolve))
  return {
    code,
    events: client.lines,
    stderr: client.stderr,
    said: client.stderr.filter((l) => l.startsWith('udsu: ')),
    profile: client.profile,
  }
}

/** A UDP socket holding a port, and the datagrams that arrive on it (it never answers). */
async function holdPort(
  host: string,
): Promise<{ port: number; received: Buffer[]; waitForCount(count: number): Promise<void>; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4')
  const received: Buffer[] = []
  const waiters: Array<() => void> = []
  socket.on('message', (bytes) => {
    received.push(bytes)
    for (const wake of waiters.splice(0)) wake()
  })
  await new Promise<void>((resolve) => socket.bind(0, host, resolve))
  return {
    port: socket.address().port,
    received,
    async waitForCount(count) {
      while (received.length < count) await new Promise<void>((resolve) => waiters.push(resolve))
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  }
}

describe('failures at start are failures (real processes)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('a taken UDP port: exit 3, one line naming udp, start and the port; never ready; the profile is released', async () => {
    const holder = await holdPort('0.0.0.0')
    try {
      const config = writeConfig({
        plugins: [{ resolve: 'udp', options: { port: holder.port } }, 'hole-punch', 'rsa', 'reliable'],
      })
      const run = await runUntilExit({ name: 'alice', server: NOWHERE, config })
      expect(run.code).to.equal(EXIT_PLUGIN_FAILED)
      expect(run.said).to.deep.equal([
        `udsu: plugin "udp" failed at start: port ${holder.port} is in use by another program: set udp's port option to a free port, or to 0 for any`,
      ])
      expect(run.stderr.filter((l) => /EADDRINUSE/.test(l))).to.deep.equal([])
      expect(run.events.map((e) => e.type)).to.not.include('ready')
      // stop ran for what had started: the core's stop tap released the profile's lock.
      expect(fs.existsSync(path.join(run.profile, 'lock'))).to.equal(false)
    } finally {
      await holder.close()
    }
  })

  it('a garbage identity.pem: exit 3, one line naming rsa, init and the file; no "add rsa" hint', async () => {
    const profile = tempDir('udsu-garbage-')
    fs.writeFileSync(path.join(profile, 'identity.pem'), 'not a key at all\n', { mode: 0o600 })
    const run = await runUntilExit({ name: 'alice', server: NOWHERE, profile })
    expect(run.code).to.equal(EXIT_PLUGIN_FAILED)
    expect(run.said).to.have.length(1)
    expect(run.said[0]).to.match(
      /^udsu: plugin "rsa" failed at init: \S+identity\.pem is not a readable PEM RSA private key/,
    )
    expect(run.stderr.join('\n')).to.not.match(/add "rsa"/)
    expect(run.events.map((e) => e.type)).to.not.include('ready')
    expect(fs.existsSync(path.join(profile, 'lock'))).to.equal(false)
  })

  it('says "add rsa" when no plugin provides encryption', async () => {
    const run = await runUntilExit({
      name: 'alice',
      server: NOWHERE,
      config: writeConfig({ plugins: ['udp', 'hole-punch'] }),
    })
    expect(run.code).to.equal(1)
    expect(run.said).to.deep.equal(['udsu: no plugin provided an identity key: add "rsa" to the plugins in the config'])
  })

  it('refuses rsa.bits that cannot work, naming the sizes that do', async () => {
    const run = await runUntilExit({
      name: 'alice',
      server: NOWHERE,
      config: writeConfig({ plugins: ['udp', 'hole-punch', { resolve: 'rsa', options: { bits: 8192 } }] }),
    })
    expect(run.code).to.equal(EXIT_BAD_CONFIG)
    expect(run.stderr.join('\n')).to.include('plugins[2] (rsa).options.bits must be one of 2048, 3072, not 8192')
  })

  it('says "generating a 2048-bit key…" while it does, on stderr; stdout stays JSON', async () => {
    const server = track(await ServerProcess.start())
    const profile = tempDir('udsu-newkey-')
    const config = writeConfig({
      plugins: ['udp', 'hole-punch', { resolve: 'rsa', options: { bits: 2048 } }, 'reliable'],
    })
    const client = track(HeadlessClient.spawn({ name: 'newcomer', server: server.address, profile, config }))
    await client.waitFor((e) => e.type === 'ready', 'the newcomer to be ready')
    const notice = client.stderr.findIndex((l) => /\[udsu:rsa\] generating a 2048-bit key…$/.test(l))
    expect(notice, client.describe()).to.be.at.least(0)
    expect(client.lines.filter((e) => e.type === 'not-json')).to.deep.equal([])
    expect(fs.existsSync(path.join(profile, 'identity.pem'))).to.equal(true)
  })

  it('a duplicate command name stops the client, naming the plugin that brought it', async () => {
    const config = writeConfig({ plugins: ['udp', 'hole-punch', 'rsa', path.join(FIXTURE_PLUGINS, 'dup-command')] })
    const run = await runUntilExit({ name: 'alice', server: NOWHERE, config })
    expect(run.code).to.equal(EXIT_PLUGIN_FAILED)
    expect(run.said).to.deep.equal([
      'udsu: plugin "dup-command" failed at create: command /fingerprint is already registered',
    ])
  })

  it('refuses a plugin built for another plugin API, saying which', async () => {
    const config = writeConfig({ plugins: ['udp', 'hole-punch', 'rsa', path.join(FIXTURE_PLUGINS, 'future-api')] })
    const run = await runUntilExit({ name: 'alice', server: NOWHERE, config })
    expect(run.code).to.equal(EXIT_BAD_CONFIG)
    expect(run.stderr.join('\n')).to.include(
      'plugins[3]: plugin "future-api" was built for udsu plugin API 99, and this udsu has API 1',
    )
  })

  it('a server port held by another program (not udsu) is told once, plainly, with what to do', async () => {
    const holder = await holdPort('127.0.0.1')
    try {
      const config = writeConfig({
        plugins: [
          'udp',
          { resolve: 'hole-punch', options: { keepaliveMs: 200, requestTimeoutMs: 50 } },
          'embedded-server',
          'rsa',
          'reliable',
        ],
      })
      const server = `127.0.0.1:${holder.port}`
      const client = track(HeadlessClient.spawn({ name: 'alice', server, config }))
      const told = (e: Event) => e.type === 'error' && String(e.message).includes('held by another program')
      const error = await client.waitFor(told, 'the client to say the port is held')
      expect(error.message).to.equal(
        `${server} is held by another program that does not answer as a udsu server, so no server can start there: ` +
          'stop that program, or choose another server with --server HOST:PORT (a free port on this machine starts one here)',
      )
      const offline = await client.waitFor((e) => e.type === 'server', 'the server state')
      expect(offline).to.deep.include({ online: false, reason: `another program holds ${server}` })
      // Several more rounds of asking (each a hello the holder sees), and still it was said once.
      await holder.waitForCount(holder.received.length + 6)
      expect(client.lines.filter(told)).to.have.length(1)
      expect(client.lines.filter((e) => e.type === 'server')).to.have.length(1)
      expect(client.stderr.filter((l) => /EADDRINUSE/.test(l))).to.deep.equal([])
    } finally {
      await holder.close()
    }
  })
})

describe('refusals and failing taps on the message path (real processes)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it("stops a message vetoed with the plugin's own copy of Veto, and the error carries id and to", async () => {
    // The fixture's Veto is another class than ours, as with a plugin that installed its own copy of udsu.
    const { Veto: TheirVeto } = require(path.join(FIXTURE_PLUGINS, 'banned-words', 'veto.js')) as {
      Veto: new (reason: string) => Error
    }
    expect(new TheirVeto('x')).to.not.be.instanceOf(Veto)

    const server = track(await ServerProcess.start())
    const filter = {
      resolve: path.join(FIXTURE_PLUGINS, 'banned-words'),
      options: { words: ['darn'], crashOn: 'boom' },
    }
    const config = writeConfig({ plugins: ['udp', 'hole-punch', 'rsa', 'reliable', filter] })
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address, config }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address }))

    alice.send({ type: 'send', to: 'bob', text: 'well DARN it' })
    const refused = await alice.waitFor(
      (e) => e.type === 'error' && String(e.message).includes('not allowed'),
      'the refusal',
    )
    expect(refused).to.deep.include({ message: '"darn" is not allowed here', to: 'bob' })
    expect(refused.id).to.match(/^[0-9a-f]{32}$/)

    // A filter that crashes has not approved the message either: stopped, and the crash reported by the plugin's name.
    alice.send({ type: 'send', to: 'bob', text: 'boom goes the filter' })
    const crashed = await alice.waitFor(
      (e) => e.type === 'error' && e.to === 'bob' && e.id !== refused.id,
      'the crashed filter to stop the message',
    )
    expect(crashed.message).to.equal('not sent: the plugin "banned-words" failed while checking it')
    expect(
      alice.lines.some(
        (e) =>
          e.type === 'error' &&
          /plugin "banned-words" failed in hook compose: cannot read properties/.test(String(e.message)),
      ),
    ).to.equal(true)

    alice.send({ type: 'send', to: 'bob', text: 'well, fine' })
    await bob.message('well, fine')
    expect(bob.messages().map((e) => e.text)).to.deep.equal(['well, fine'])
    // Neither stopped message ever became pending: it never entered the pipeline.
    expect(
      alice.lines.filter((e) => e.type === 'pending' && (e.id === refused.id || e.id === crashed.id)),
    ).to.deep.equal([])
  })

  it('reports a tap that hangs in deliver by name after hookTimeoutMs, and goes on delivering', async () => {
    const server = track(await ServerProcess.start())
    const config = writeConfig({
      hookTimeoutMs: 300,
      plugins: ['udp', 'hole-punch', 'rsa', 'reliable', path.join(FIXTURE_PLUGINS, 'hang-deliver')],
    })
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address, config }))
    alice.send({ type: 'send', to: 'bob', text: 'are you there?' })
    await bob.message('are you there?')
    const hung = bob.lines.find(
      (e) => e.type === 'error' && String(e.message).startsWith('plugin "hang-deliver" failed in hook deliver'),
    )
    expect(hung?.message).to.equal(
      'plugin "hang-deliver" failed in hook deliver: did not finish within 300 ms (hookTimeoutMs); the client went on without it',
    )
    await alice.waitFor((e) => e.type === 'delivered', 'the delivery acknowledgement')
  })
})
