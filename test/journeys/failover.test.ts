// Two independent `udsu server` processes and two headless clients given both (`--server A,B`): when A dies (SIGKILL)
// or drains (SIGTERM, which sends `closing`), both move to B, and the conversation goes on with nothing lost or doubled.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  cleanupTemp,
  HeadlessClient,
  ServerProcess,
  trackProcesses,
  writeConfig,
  type ClientOptions,
} from '../support/processes'
import { deliver, figure, quiet } from './support'

// Pings every second, so that a dead server is noticed within a few seconds (the default is 15 s).
const config = () =>
  writeConfig({ plugins: ['udp', { resolve: 'hole-punch', options: { keepaliveMs: 1_000 } }, 'rsa', 'reliable'] })

describe('journeys: clients fail over between two servers (real processes on loopback)', function () {
  this.timeout(90_000)
  const track = trackProcesses()
  after(cleanupTemp)

  async function setup() {
    const a = track(await ServerProcess.start())
    const b = track(await ServerProcess.start())
    const servers = `127.0.0.1:${a.port},127.0.0.1:${b.port}`
    const options = (name: string): ClientOptions => ({ name, server: servers, config: config() })
    const alice = track(await HeadlessClient.start(options('alice')))
    const bob = track(await HeadlessClient.start(options('bob')))
    for (const client of [alice, bob]) {
      const online = await client.waitFor((e) => e.type === 'server' && e.online === true, `${client.name} online`)
      expect(online.current, `${client.name} starts with the first server`).to.equal(`127.0.0.1:${a.port}`)
    }
    await quiet(alice, bob)
    return { a, b, alice, bob }
  }

  /** Waits until `client` says it is online at `server`, from line `mark` on; the ms it took. */
  async function movedTo(
    client: HeadlessClient,
    server: ServerProcess,
    mark: number,
    started: number,
  ): Promise<number> {
    await client.waitFor(
      (e) => e.type === 'server' && e.online === true && e.current === `127.0.0.1:${server.port}`,
      `${client.name} online at B`,
      20_000,
      mark,
    )
    return Date.now() - started
  }

  /** Every message `client` was shown, by text. */
  const shown = (client: HeadlessClient) =>
    client.lines.filter((e) => e.type === 'message').map((e) => e.text as string)

  it('A is killed mid-conversation: both move to B within seconds, nothing is lost or doubled, and a new message arrives', async () => {
    const { a, b, alice, bob } = await setup()
    const marks = [alice.lines.length, bob.lines.length]
    // Messages in flight when A dies: direct paths do not need the server, so they go on.
    for (let i = 0; i < 5; i++) alice.send({ type: 'send', to: 'bob', text: `during ${i}` })
    const killed = Date.now()
    a.kill()
    for (let i = 5; i < 10; i++) alice.send({ type: 'send', to: 'bob', text: `during ${i}` })
    const moved = await Promise.all([movedTo(alice, b, marks[0], killed), movedTo(bob, b, marks[1], killed)])
    figure('A killed: alice, bob at B after', Math.max(...moved))
    expect(Math.max(...moved), 'both at B').to.be.below(15_000)
    for (let i = 0; i < 10; i++) await bob.message(`during ${i}`)
    figure('after the move, a new message', await deliver(bob, alice, 'after the move'))
    expect(shown(bob).filter((t) => t.startsWith('during '))).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => `during ${i}`),
    )
    expect(shown(alice).filter((t) => t === 'after the move')).to.have.length(1)
    // Each server's key is pinned under its own HOST:PORT.
    const pinned = JSON.parse(fs.readFileSync(path.join(alice.profile, 'known-servers.json'), 'utf8')) as Record<
      string,
      string
    >
    expect(Object.keys(pinned).sort()).to.deep.equal([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort())
    expect(pinned[`127.0.0.1:${a.port}`]).not.to.equal(pinned[`127.0.0.1:${b.port}`])
    // B knows both now: a client that restarts finds the other there (a new introduction, not the old path).
    const connected = alice.lines.length
    expect(await bob.quit()).to.equal(0)
    const bobAgain = track(
      await HeadlessClient.start({
        name: 'bob',
        server: `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
        profile: bob.profile,
        config: config(),
      }),
    )
    await bobAgain.waitFor(
      (e) => e.type === 'server' && e.online === true && e.current === `127.0.0.1:${b.port}`,
      'bob back, at B (A is dead)',
    )
    figure('bob restarted, then written', await deliver(alice, bobAgain, 'welcome back'))
    expect(alice.lines.slice(connected).some((e) => e.type === 'connected' && e.peer === 'bob')).to.equal(true)
  })

  it('A drains (SIGTERM sends closing): both move to B at once', async () => {
    const { a, b, alice, bob } = await setup()
    const marks = [alice.lines.length, bob.lines.length]
    const drained = Date.now()
    a.child.kill('SIGTERM')
    const moved = await Promise.all([movedTo(alice, b, marks[0], drained), movedTo(bob, b, marks[1], drained)])
    figure('A drained: alice, bob at B after', Math.max(...moved))
    expect(Math.max(...moved), 'both at B').to.be.below(15_000)
    // At once, on the notice (the reason says so), not after missed pings.
    for (const client of [alice, bob]) {
      const offline = client.lines
        .slice(client === alice ? marks[0] : marks[1])
        .find((e) => e.type === 'server' && e.online === false)
      expect(offline?.reason).to.equal('the server is stopping')
    }
    figure('after the drain, a message', await deliver(alice, bob, 'after the drain'))
    expect(shown(bob).filter((t) => t === 'after the drain')).to.have.length(1)
  })
})
