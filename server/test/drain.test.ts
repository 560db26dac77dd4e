// SIGTERM drains: every registered client is told (`closing`) before the process exits 0. A real client shows the server
// lost and registers again, by itself, once a server is back at that address; conversations then go on.
import { expect } from 'chai'
import { HeadlessClient, ServerProcess, trackProcesses, writeConfig } from '../../test/support/processes'
import { UdpPeer } from './operator-support'

describe('udsu server drain (SIGTERM)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('tells every registered client `closing`, logs how many, and exits 0', async () => {
    const server = track(await ServerProcess.start({ args: ['--log-level', 'info'] }))
    const at = { address: '127.0.0.1', port: server.port }
    const alice = await UdpPeer.open(at)
    const bob = await UdpPeer.open(at)
    const stranger = await UdpPeer.open(at)
    try {
      expect((await alice.register('alice')).t).to.equal('registered')
      expect((await bob.register('bob')).t).to.equal('registered')
      server.child.kill('SIGTERM')
      await alice.waitFor((m) => m.t === 'closing', 'the closing notice at alice')
      await bob.waitFor((m) => m.t === 'closing', 'the closing notice at bob')
      expect(await server.exited).to.equal(0)
      expect(server.stderr.join('\n')).to.match(/\[server\] draining: telling the clients \{"clients":2\}/)
      expect(server.stderr.join('\n')).to.match(/\[server\] stopped \{"told":2\}/)
      expect(
        stranger.received.some((m) => m.t === 'closing'),
        'only registered clients are told',
      ).to.equal(false)
    } finally {
      alice.close()
      bob.close()
      stranger.close()
    }
  })

  it('a client shows the server stopping at once, registers again when it is back, and its chat goes on', async () => {
    // The default keepalive (15 s): only the server's sealed `closing` can tell the clients within the 10 s waited below.
    const config = writeConfig({
      plugins: ['udp', { resolve: 'hole-punch', options: { embeddedServer: false } }, 'rsa'],
    })
    const first = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: first.address, config }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: first.address, config }))
    await alice.waitFor((e) => e.type === 'server' && e.online === true, 'alice registered')
    await bob.waitFor((e) => e.type === 'server' && e.online === true, 'bob registered')
    const seen = alice.lines.length
    const bobSeen = bob.lines.length
    first.child.kill('SIGTERM')
    expect(await first.exited).to.equal(0)
    const lost = await alice.waitFor(
      (e) => e.type === 'server' && e.online === false,
      'alice to see the server lost',
      10_000,
      seen,
    )
    expect(lost).to.include({ server: first.address, reason: 'the server is stopping' })

    const second = track(await ServerProcess.start({ port: first.port, dataDir: first.dataDir }))
    await alice.waitFor((e) => e.type === 'server' && e.online === true, 'alice registered again', 10_000, seen)
    await bob.waitFor((e) => e.type === 'server' && e.online === true, 'bob registered again', 10_000, bobSeen)
    bob.send({ type: 'send', to: 'alice', text: 'after the restart' })
    await alice.message('after the restart')
    expect(second.port).to.equal(first.port)
  })
})
