// `udsu netcheck` on loopback: the JSON it prints, its sentences and its exit codes, against real servers and silence.
// Hairpinning "yes" and "no" with a forwarding socket as the router. Behind real NATs: test/nat/netcheck.test.ts.
import * as dgram from 'node:dgram'
import * as os from 'node:os'
import { expect } from 'chai'
import { classifyNat, netcheck, type ServerCheck } from '../netcheck'
import { encodeJson, FrameKind } from '../../protocol'
import { runNetcheck, ServerProcess, trackProcesses } from '../../test/support/processes'

/** A bound UDP socket that never answers: a server that is down behind a firewall that drops (no ICMP comes back). */
async function silentPort(): Promise<{ port: number; close(): void }> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return { port: socket.address().port, close: () => socket.close() }
}

/** A port nothing listens on: bound once for a free number, then closed, so the kernel answers ICMP port unreachable. */
async function closedPort(): Promise<number> {
  const socket = await silentPort()
  socket.close()
  return socket.port
}

describe('udsu netcheck (loopback)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('prints one JSON object with every finding and exits 0 when the server answered', async () => {
    const server = track(await ServerProcess.start())
    const run = await runNetcheck(['--server', server.address, '--json'])
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout.trim().split('\n')).to.have.length(1)
    const report = run.report!
    expect(report.udp).to.equal(true)
    expect(report.answered).to.equal(true)
    expect(report.public?.address).to.equal('127.0.0.1')
    expect(report.nat).to.equal('none')
    expect(report).not.to.have.property('hairpinning') // nothing to hairpin without a NAT
    expect(report.servers).to.have.length(1)
    const [check] = report.servers
    expect(check).to.include({ server: server.address, address: '127.0.0.1', answered: true })
    expect(check.altPort).to.be.a('number').and.not.equal(server.port)
    expect(check.public).to.deep.equal(report.public)
    expect(check.altPublic).to.deep.equal(report.public) // the second port saw the same socket
    expect(check.rttSamplesMs).to.have.length(3)
    expect(check.rttMs).to.equal(Math.min(...check.rttSamplesMs))
    expect(check.rttMs).to.be.above(0)
    expect(report.verdict.join(' ')).to.match(/runs on this machine/)
  })

  it('says it in words without --json', async () => {
    const server = track(await ServerProcess.start())
    const run = await runNetcheck(['--server', server.address])
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout).to.match(/\* UDP: yes\n/)
    expect(run.stdout).to.match(/\* Public address: 127\.0\.0\.1:\d+\n/)
    expect(run.stdout).to.match(/\* NAT: none/)
    expect(run.stdout).to.include(`- ${server.address}: `)
    expect(run.stdout).to.match(/\d+\.\d ms; sees you at 127\.0\.0\.1:\d+, its second port \d+ at 127\.0\.0\.1:\d+/)
  })

  it('asks every server given, and exits 0 when one of them answered', async () => {
    const server = track(await ServerProcess.start())
    const silent = await silentPort()
    try {
      const run = await runNetcheck(['--server', `127.0.0.1:${silent.port},${server.address}`, '--json'])
      expect(run.code, run.stderr).to.equal(0)
      expect(run.report!.servers.map((s) => [s.server, s.answered, s.error])).to.deep.equal([
        [`127.0.0.1:${silent.port}`, false, 'no answer'],
        [server.address, true, undefined],
      ])
    } finally {
      silent.close()
    }
  })

  it('exits 1 with a clear message when no server answers: silence means UDP is blocked or the server is down', async () => {
    const silent = await silentPort()
    try {
      const run = await runNetcheck(['--server', `127.0.0.1:${silent.port}`, '--json'])
      expect(run.code).to.equal(1)
      expect(run.stderr).to.equal(
        `udsu netcheck: no udsu server answered (127.0.0.1:${silent.port}): UDP is blocked on this network, or the server is down\n`,
      )
      expect(run.report).to.deep.include({ udp: false, answered: false, nat: 'unknown' })
      expect(run.report).not.to.have.property('public')
      expect(run.report!.verdict.join(' ')).to.match(/needs UDP/)
    } finally {
      silent.close()
    }
  })

  it('exits 1 and tells a closed port apart: the host answered, so UDP gets out, but no server listens', async () => {
    const port = await closedPort()
    const run = await runNetcheck(['--server', `127.0.0.1:${port}`])
    expect(run.code).to.equal(1)
    expect(run.stderr).to.equal(`udsu netcheck: no udsu server answered (127.0.0.1:${port}): nothing listens there\n`)
    expect(run.stdout).to.match(/\* UDP: yes, but no udsu server answered/)
    expect(run.stdout).to.include(
      `- 127.0.0.1:${port}: refused: the host answered that nothing listens on that UDP port`,
    )
  })

  it('exits 2 for a bad command line, pointing to its help', async () => {
    const bad = await runNetcheck(['--server', 'nowhere'])
    expect(bad.code).to.equal(2)
    expect(bad.stderr).to.equal(
      'udsu: --server "nowhere" is not host:port (e.g. 127.0.0.1:7777)\nRun udsu netcheck --help for usage.\n',
    )
    const unknown = await runNetcheck(['--port', '1'])
    expect(unknown.code).to.equal(2)
    expect(unknown.stderr).to.match(/Unknown option '--port'/)
    const help = await runNetcheck(['--help'])
    expect(help.code).to.equal(0)
    expect(help.stdout).to.match(/^Usage: udsu netcheck/)
  })
})

describe('classifyNat', () => {
  const seen = (address: string, port: number) => ({ address, port })
  const answered = (pub: { address: string; port: number }, alt?: { address: string; port: number }): ServerCheck => ({
    server: 'x:1',
    answered: true,
    rttSamplesMs: [1],
    public: pub,
    ...(alt ? { altPort: 2, altPublic: alt } : {}),
  })
  const local = [seen('10.0.0.2', 4000)]

  it('tells no NAT, endpoint-independent, symmetric and unknown apart from the views of one socket', () => {
    expect(classifyNat([answered(seen('10.0.0.2', 4000), seen('10.0.0.2', 4000))], local)).to.equal('none')
    expect(classifyNat([answered(seen('203.0.113.5', 4000), seen('203.0.113.5', 4000))], local)).to.equal('eim')
    expect(classifyNat([answered(seen('203.0.113.5', 4000), seen('203.0.113.5', 61000))], local)).to.equal('symmetric')
    expect(classifyNat([answered(seen('203.0.113.5', 4000))], local)).to.equal('unknown') // no second port answered
    expect(classifyNat([], local)).to.equal('unknown')
  })

  it('compares across servers too: two servers that see different ports mean a mapping per destination', () => {
    expect(classifyNat([answered(seen('203.0.113.5', 4000)), answered(seen('203.0.113.5', 4001))], local)).to.equal(
      'symmetric',
    )
    expect(classifyNat([answered(seen('203.0.113.5', 4000)), answered(seen('203.0.113.5', 4000))], local)).to.equal(
      'eim',
    )
  })
})

describe('netcheck() hairpinning, against a rendezvous server that reports a forwarded address', function () {
  this.timeout(30_000)
  // Where the server says it sees us is a forwarding socket on this machine's own (non-loopback) address: as a NAT's
  // public endpoint, what reaches it comes back to our socket only if the "router" (the forwarder) hairpins.
  const own = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  const sockets: dgram.Socket[] = []
  const bound = async (address: string) => {
    const socket = dgram.createSocket('udp4')
    sockets.push(socket)
    await new Promise<void>((resolve) => socket.bind(0, address, resolve))
    return socket
  }
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close()
  })

  /** A server answering `hello` and `mapping` with the forwarder's endpoint; the forwarder relays to the asker if `hairpin`. */
  async function fakeWorld(hairpin: boolean): Promise<string> {
    const server = await bound('127.0.0.1')
    const alt = await bound('127.0.0.1')
    const forwarder = await bound(own!)
    let asker: dgram.RemoteInfo | undefined
    const answer = (socket: dgram.Socket) => (bytes: Buffer, from: dgram.RemoteInfo) => {
      const request = JSON.parse(bytes.subarray(3).toString()) as { t: string; rid: string }
      asker = from
      const seen = { address: own!, port: forwarder.address().port }
      const reply =
        request.t === 'hello'
          ? { t: 'cookie', rid: request.rid, cookie: 'c'.repeat(32), public: seen, altPort: alt.address().port }
          : { t: 'mapped', rid: request.rid, public: seen }
      socket.send(encodeJson(FrameKind.Server, reply), from.port, from.address)
    }
    server.on('message', answer(server))
    alt.on('message', answer(alt))
    forwarder.on('message', (bytes) => {
      if (hairpin && asker) forwarder.send(bytes, asker.port, asker.address)
    })
    return `127.0.0.1:${server.address().port}`
  }

  it('says yes when a datagram to our public address comes back, and no when it does not', async function () {
    // No non-loopback IPv4 address on this machine: outside CI the check is skipped with the reason; in CI it fails.
    if (!own && process.env.CI) throw new Error('this test needs a non-loopback IPv4 address, and CI machines have one')
    if (!own) return this.skip()
    const yes = await netcheck({ servers: [await fakeWorld(true)] })
    expect(yes).to.include({ answered: true, nat: 'eim', hairpinning: true })
    expect(yes.verdict.join(' ')).to.match(/Your router hairpins/)
    const no = await netcheck({ servers: [await fakeWorld(false)] })
    expect(no).to.include({ answered: true, nat: 'eim', hairpinning: false })
  })
})
