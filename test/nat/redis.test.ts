// Several instances in the NAT lab: two `udsu server --redis --relay` instances on two public hosts, one Redis, and two
// clients behind symmetric NATs (no direct path can open), each registered at a different instance. They meet through
// Redis and talk through the relay, every frame crossing from one instance to the other; each client hears only from
// the address it registered with (its NAT would drop anything else).
import { expect } from 'chai'
import { buildLab, requireLab, type Lab } from '../lab/lab'
import { cleanupTemp, fixtureProfile, HeadlessClient, ServerProcess, writeConfig } from '../support/processes'
import { RedisServer } from '../support/redis'
import { pathsTo, timedMessage } from './world'

describe('NAT lab: the relay between clients of two instances sharing Redis', function () {
  this.timeout(120_000)
  let lab: Lab | undefined
  let redis: RedisServer | undefined
  const processes: Array<{ kill(): void }> = []

  before(requireLab)
  before(async () => {
    lab = await buildLab({
      nats: [
        { name: 'mobile', type: 'symmetric' },
        { name: 'hotel', type: 'symmetric' },
      ],
      hosts: [{ name: 'srv1' }, { name: 'srv2' }, { name: 's', behind: 'mobile' }, { name: 't', behind: 'hotel' }],
    })
  })
  after(async () => {
    for (const p of processes.splice(0)) p.kill()
    await redis?.kill()
    await lab?.teardown()
    cleanupTemp()
  })

  it('two clients behind symmetric NATs at different instances chat through the relay, across Redis', async () => {
    const [srv1, srv2] = [lab!.host('srv1'), lab!.host('srv2')]
    redis = await RedisServer.start({ host: srv1.ip, spawner: srv1.spawn.bind(srv1) })
    const start = (host: typeof srv1) =>
      ServerProcess.start({
        host: '0.0.0.0',
        args: ['--relay', '--redis', redis!.url, '--log-level', 'info'],
        spawner: host.spawn.bind(host),
      })
    const [one, two] = await Promise.all([start(srv1), start(srv2)])
    processes.push(one, two)
    const config = writeConfig({
      plugins: ['udp', { resolve: 'hole-punch', options: { embeddedServer: false } }, 'rsa'],
    })
    const spawn = (hostName: 's' | 't', name: string, key: string, server: string) => {
      const host = lab!.host(hostName)
      const client = HeadlessClient.spawn({
        name,
        key,
        server,
        profile: fixtureProfile(key),
        config,
        spawner: host.spawn.bind(host),
      })
      processes.push(client)
      return client
    }
    const sam = spawn('s', 'sam', 'bob', `${srv1.ip}:${one.port}`)
    const tom = spawn('t', 'tom', 'carol', `${srv2.ip}:${two.port}`)
    for (const c of [sam, tom]) await c.waitFor((e) => e.type === 'server' && e.online === true, `${c.name} registered`)

    await timedMessage(sam, tom, 10_000)
    await timedMessage(tom, sam, 10_000)
    expect(pathsTo(sam, 'tom')).to.deep.equal(['relay'])
    expect(pathsTo(tom, 'sam')).to.deep.equal(['relay'])
    // The relay agreed at the instance of whoever asked last, each side's consent checked at its own instance.
    expect([...one.stderr, ...two.stderr].join('\n')).to.match(/relaying/)
    // More than one frame each way (the handshake, then the messages), all of it through Redis.
    for (let i = 0; i < 3; i++) await timedMessage(i % 2 ? tom : sam, i % 2 ? sam : tom, 10_000)
  })
})
