// The command line an operator scripts against, run as real processes: usage errors exit 2 and say what was wrong,
// each subcommand takes only its own flags, `udsu ping` as a health check, dual-stack listening, SIGUSR1 and SIGHUP.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { encodeFrame, FrameKind } from '../../core/wire'
import { ServerProcess, tempDir, trackProcesses } from '../../test/support/processes'
import { encodeRelay } from '../../protocol'
import { fileText, runCli, UdpPeer } from './operator-support'

describe('udsu command line (operators)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  describe('usage errors exit 2 with the reason and where to read the usage', () => {
    const cases: Array<[string, string[], RegExp]> = [
      [
        'a chat flag given to server',
        ['server', '--name', 'alice'],
        /--name is not an option of udsu server\nRun udsu server --help/,
      ],
      ['a server flag given to chat', ['--relay'], /--relay is not an option of udsu chat/],
      [
        'a hexadecimal port',
        ['server', '--port', '0x4A40'],
        /--port must be a decimal number from 0 to 65535, not "0x4A40"/,
      ],
      ['a port with an exponent', ['server', '--port', '7e3'], /--port must be a decimal number/],
      ['a port out of range', ['server', '--alt-port', '65536'], /--alt-port must be a decimal number from 0 to 65535/],
      ['a missing value', ['server', '--port'], /--port <value>' argument missing/],
      [
        'a bad log level',
        ['server', '--log-level', 'loud'],
        /--log-level must be one of debug, info, warn, error, silent, not "loud"/,
      ],
      ['a bad log format', ['server', '--log-format', 'xml'], /--log-format must be one of human, json/],
      ['an empty host', ['server', '--host', ''], /--host must be an address to listen on, not ""/],
      ['a bad metrics address', ['server', '--metrics', '9464'], /--metrics must be HOST:PORT/],
      [
        'a Redis address that is not a redis:// URL',
        ['server', '--redis', '127.0.0.1:6379'],
        /--redis must be redis:\/\/HOST:PORT/,
      ],
      ['a stray word', ['server', 'now'], /unexpected argument "now" to udsu server/],
      ['an unknown command', ['serve'], /unknown command "serve"/],
      ['a bad web port', ['--web-port', '0x50'], /--web-port must be a decimal number/],
      ['ping without a server', ['ping'], /udsu ping needs the server/],
      ['ping with a bad address', ['ping', 'localhost'], /udsu ping: "localhost" is not host:port/],
      [
        'ping with a bad timeout',
        ['ping', '127.0.0.1:7777', '--timeout', 'soon'],
        /--timeout must be a decimal number of milliseconds/,
      ],
    ]
    for (const [what, args, said] of cases) {
      it(`${what}: udsu ${args.join(' ')}`, async () => {
        const run = await runCli(args)
        expect(run.code, run.stderr).to.equal(2)
        expect(run.stderr).to.match(said)
        expect(run.stdout).to.equal('')
      })
    }
  })

  it('a log file that cannot be opened stops the server with exit 1, naming it', async () => {
    const missing = path.join(tempDir('udsu-log-'), 'no-such-dir', 'server.log')
    const run = await runCli(['server', '--host', '127.0.0.1', '--port', '0', '--log-file', missing])
    expect(run.code).to.equal(1)
    expect(run.stderr).to.match(new RegExp(`^udsu: cannot open the log file ${missing}: ENOENT`))
    expect(run.stdout).to.equal('')
  })

  it("`udsu server --help` lists the server's options only, and `udsu --help` the client's", async () => {
    const server = await runCli(['server', '--help'])
    expect(server.code).to.equal(0)
    for (const flag of [
      '--host',
      '--port',
      '--alt-port',
      '--relay',
      '--metrics',
      '--log-format',
      '--log-file',
      '--log-redact',
      '--config',
    ]) {
      expect(server.stdout).to.include(flag)
    }
    expect(server.stdout).to.not.match(/--name|--frontend|--profile/)
    const chat = await runCli(['--help'])
    expect(chat.code).to.equal(0)
    expect(chat.stdout).to.include('--frontend')
    expect(chat.stdout).to.not.match(/--relay|--alt-port|--metrics/)
  })

  it('`udsu ping` exits 0 when the server answers and 1, with what to check, when nothing does', async () => {
    const server = track(await ServerProcess.start())
    const up = await runCli(['ping', server.address])
    expect(up.code, up.stderr).to.equal(0)
    expect(up.stdout).to.match(new RegExp(`^udsu server at ${server.address} answered in \\d+\\.\\d ms\\n$`))
    server.kill()
    await server.exited
    const down = await runCli(['ping', server.address, '--timeout', '600'])
    expect(down.code).to.equal(1)
    expect(down.stderr).to.equal(
      `udsu: no answer from ${server.address} within 600 ms: is a udsu server running there, and does the firewall let UDP through to that port?\n`,
    )
  })

  it('the health check is answered without registration and never with more bytes than asked', async () => {
    const server = track(await ServerProcess.start())
    const peer = await UdpPeer.open({ address: '127.0.0.1', port: server.port })
    try {
      // Unpadded, the answer would be longer than the request: the server stays silent rather than amplify.
      await peer.send({ t: 'health', rid: 'ab' })
      const padded = await peer.request({ t: 'health', pad: 'x'.repeat(24) })
      expect(padded.t).to.equal('healthy')
      expect(peer.received.filter((m) => m.t === 'healthy')).to.have.length(1)
    } finally {
      peer.close()
    }
  })

  it('`--host ::` listens on IPv6 and IPv4: a v4 client registers, is introduced with its IPv4 address, and is relayed', async () => {
    const server = track(await ServerProcess.start({ host: '::', args: ['--relay'] }))
    expect((await runCli(['ping', `[::1]:${server.port}`])).code).to.equal(0)
    expect((await runCli(['ping', `127.0.0.1:${server.port}`])).code).to.equal(0)
    const alice = await UdpPeer.open({ address: '127.0.0.1', port: server.port })
    const bob = await UdpPeer.open({ address: '::1', port: server.port }, 'udp6')
    try {
      const registered = await alice.register('alice')
      expect(registered.t).to.equal('registered')
      // Not ::ffff:127.0.0.1, which an IPv4 socket could not send to.
      expect(registered.public).to.deep.include({ address: '127.0.0.1' })
      expect((await bob.register('bob')).t).to.equal('registered')
      const intro = await bob.request({ t: 'connect', to: 'alice' })
      expect(intro.t).to.equal('intro')
      expect((intro.peer as { public: unknown }).public).to.deep.include({ address: '127.0.0.1' })
      const toAlice = await alice.waitFor((m) => m.t === 'intro', 'the intro to alice')
      expect((toAlice.peer as { public: unknown }).public).to.deep.include({ address: '::1' })
      // The relay forwards between the two families too.
      expect((await alice.request({ t: 'relay', to: 'bob' })).ready).to.equal(false)
      expect((await bob.request({ t: 'relay', to: 'alice' })).ready).to.equal(true)
      await alice.sendSealed(encodeRelay('bob', encodeFrame(FrameKind.Data, Buffer.alloc(32, 1))))
      await bob.waitFor((m) => m.t === '<not a server frame>', 'the relayed frame at bob')
      await bob.sendSealed(encodeRelay('alice', encodeFrame(FrameKind.Data, Buffer.alloc(32, 2))))
      await alice.waitFor((m) => m.t === '<not a server frame>', 'the relayed frame at alice')
    } finally {
      alice.close()
      bob.close()
    }
  })

  it("SIGUSR1 logs the counters (not Node's debugger), SIGHUP reopens --log-file after a rotation", async () => {
    const dir = tempDir('udsu-log-')
    const log = path.join(dir, 'server.log')
    const server = track(await ServerProcess.start({ args: ['--log-level', 'info', '--log-file', log] }))
    const peer = await UdpPeer.open({ address: '127.0.0.1', port: server.port })
    try {
      expect((await peer.register('alice')).t).to.equal('registered')
    } finally {
      peer.close()
    }
    server.child.kill('SIGUSR1')
    const stats = await fileText(log, (text) => text.includes('[server] stats'), 'the stats line')
    expect(stats).to.match(/\[server\] stats \{"online":1,"received":\d+,.*"registrations":1,/)
    expect(fs.statSync(log).mode & 0o777).to.equal(0o600)

    fs.renameSync(log, `${log}.1`) // what logrotate does
    server.child.kill('SIGHUP')
    await fileText(log, (text) => text.includes('log file reopened'), 'the reopened log')
    server.child.kill('SIGUSR1')
    await fileText(log, (text) => text.includes('[server] stats'), 'the stats line in the new file')
    expect(fs.readFileSync(`${log}.1`, 'utf8').match(/\[server\] stats/g)).to.have.length(1)
    // Still serving, and nothing of an inspector on stderr.
    expect((await runCli(['ping', server.address])).code).to.equal(0)
    expect(server.stderr.join('\n')).to.not.match(/Debugger|inspector/i)
  })
})
