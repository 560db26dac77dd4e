// The server's logs as a collector reads them: with --log-format json each line is one JSON object with level, time and
// msg; no cookie, challenge, token or key ever appears; --log-redact keeps names and addresses out, in both formats.
import { expect } from 'chai'
import { publicPem } from '../../core/test/support'
import { ServerProcess, trackProcesses } from '../../test/support/processes'
import { UdpPeer } from './operator-support'

interface Run {
  lines: string[]
  /** Values that must never be logged: the cookie, the challenge nonce, the introduction token. */
  secrets: string[]
  /** Where the server saw the two clients. */
  endpoints: string[]
}

/** A server process at debug level: two clients register and are introduced, a junk datagram, SIGUSR1, SIGTERM. */
async function serverSession(track: <T extends { kill(): void }>(p: T) => T, args: string[]): Promise<Run> {
  const server = track(await ServerProcess.start({ args: ['--log-level', 'debug', ...args] }))
  const at = { address: '127.0.0.1', port: server.port }
  const alice = await UdpPeer.open(at)
  const bob = await UdpPeer.open(at)
  try {
    expect((await alice.register('alice')).t).to.equal('registered')
    expect((await bob.register('bob')).t).to.equal('registered')
    const intro = await alice.request({ t: 'connect', to: 'bob' })
    await bob.sendRaw(Buffer.from('junk'))
    server.child.kill('SIGUSR1')
    await server.waitForLog((l) => l.includes('stats'), 'the stats line')
    server.child.kill('SIGTERM')
    expect(await server.exited).to.equal(0)
    const cookie = alice.received.find((m) => m.t === 'cookie')?.cookie as string
    const nonce = alice.received.find((m) => m.t === 'challenge')?.nonce as string
    expect(cookie).to.be.a('string')
    expect(nonce).to.be.a('string')
    const endpoints = (['alice', 'bob'] as const).map((name) => {
      const registered = (name === 'alice' ? alice : bob).received.find((m) => m.t === 'registered')!.public as {
        address: string
        port: number
      }
      return `${registered.address}:${registered.port}`
    })
    return { lines: server.stderr, secrets: [cookie, nonce, intro.token as string], endpoints }
  } finally {
    alice.close()
    bob.close()
  }
}

const KEY_BODY = publicPem('alice').split('\n')[1]

describe('udsu server logs', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('--log-format json: every line is one JSON object with level, time and msg; no secret in any', async () => {
    const run = await serverSession(track, ['--log-format', 'json'])
    expect(run.lines.length).to.be.greaterThan(5)
    for (const line of run.lines) {
      const entry = JSON.parse(line) as Record<string, unknown>
      expect(entry.level, line).to.be.oneOf(['debug', 'info', 'warn', 'error'])
      expect(new Date(entry.time as string).toISOString(), line).to.equal(entry.time)
      expect(entry.msg, line).to.be.a('string')
    }
    const all = run.lines.join('\n')
    for (const secret of [...run.secrets, KEY_BODY]) expect(all).to.not.include(secret)
    // Without --log-redact the names and addresses are there, as operators debugging a client need them.
    const registered = run.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.msg === 'registered')
    expect(registered.map((e) => e.name)).to.deep.equal(['alice', 'bob'])
    expect(registered.map((e) => e.from)).to.deep.equal(run.endpoints)
    const stats = run.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.msg === 'stats')
    expect(stats).to.include({ online: 2, registrations: 2, introductions: 1 })
  })

  for (const format of ['json', 'human']) {
    it(`--log-redact (${format}): no name or address in any line, at any level`, async () => {
      const run = await serverSession(track, ['--log-format', format, '--log-redact'])
      const all = run.lines.join('\n')
      expect(all).to.include('registered')
      expect(all).to.include('[redacted]')
      for (const personal of ['alice', 'bob', ...run.endpoints, ...run.secrets]) expect(all).to.not.include(personal)
    })
  }
})
