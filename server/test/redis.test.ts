// Several `udsu server --redis` instances on one real redis-server, with real headless clients spread over them: they
// meet and chat across instances; a name bound at one instance is another key's nowhere; an instance that stops
// heartbeating loses its clients, who take their names over elsewhere at once; Redis restarted (empty) or killed, the
// instances say so, keep their own clients chatting, and recover by themselves.
import { expect } from 'chai'
import { HeadlessClient, ServerProcess, trackProcesses, writeConfig } from '../../test/support/processes'
import { RedisServer } from '../../test/support/redis'
import { runCli, UdpPeer } from './operator-support'

/** Real clients as users run them, without an embedded server (they use the instance they are given). */
const CONFIG = { plugins: ['udp', { resolve: 'hole-punch', options: { embeddedServer: false } }, 'rsa'] }

describe('udsu server --redis: several instances on one Redis (real processes)', function () {
  this.timeout(120_000)
  const track = trackProcesses()
  let redis: RedisServer | undefined

  afterEach(async () => {
    await redis?.kill()
    redis = undefined
  })

  async function instances(count: number, args: string[] = []): Promise<ServerProcess[]> {
    redis = await RedisServer.start()
    const url = redis.url
    return Promise.all(
      Array.from({ length: count }, () =>
        ServerProcess.start({ args: ['--redis', url, '--log-level', 'info', ...args] }).then(track),
      ),
    )
  }

  async function client(name: string, server: ServerProcess, key?: string): Promise<HeadlessClient> {
    const c = track(await HeadlessClient.start({ name, key, server: server.address, config: writeConfig(CONFIG) }))
    await c.waitFor((e) => e.type === 'server' && e.online === true, `${name} registered at ${server.address}`)
    return c
  }

  async function say(from: HeadlessClient, to: HeadlessClient, text: string): Promise<void> {
    from.send({ type: 'send', to: to.name, text })
    await to.message(text, 20_000)
  }

  it('clients of three instances chat with each other; a name bound at one instance is refused to another key at the others', async () => {
    const [one, two, three] = await instances(3)
    const alice = await client('alice', one)
    const bob = await client('bob', two)
    const carol = await client('carol', three)
    await say(alice, bob, 'alice@1 to bob@2')
    await say(bob, carol, 'bob@2 to carol@3')
    await say(carol, alice, 'carol@3 to alice@1')
    // Each introduction crossed Redis: the connecting side's instance found the peer at another one.
    expect(one.stderr.join('\n')).to.match(/Redis at redis:\/\/127\.0\.0\.1:\d+ connected/)

    // alice's name is alice's key's at every instance, online (at instance 1) or not.
    const squatter = await UdpPeer.open({ address: '127.0.0.1', port: three.port })
    try {
      const refused = await squatter.register('alice', 'dave')
      expect(refused).to.deep.include({ t: 'error', code: 'name_taken' })
      expect(refused.message).to.include('belongs to another key')
      await alice.quit()
      const stillRefused = await squatter.register('alice', 'dave')
      expect(stillRefused).to.deep.include({ t: 'error', code: 'name_taken' })
    } finally {
      squatter.close()
    }
  })

  it('an instance that dies loses its clients at the others within seconds; one registering elsewhere with its key takes its name over at once', async () => {
    const [one, two, three] = await instances(3)
    const alice = await client('alice', one)
    const bob = await client('bob', two)
    await say(alice, bob, 'before the crash')

    const asker = await UdpPeer.open({ address: '127.0.0.1', port: three.port })
    try {
      expect((await asker.register('carol')).t).to.equal('registered')
      expect((await asker.request({ t: 'connect', to: 'bob' })).t).to.equal('intro')
      two.child.kill('SIGKILL')
      await two.exited
      // Instance 2 stops heartbeating: after three missed beats (3 s) its registrations count for nothing.
      const deadline = Date.now() + 15_000
      let answer = await asker.request({ t: 'connect', to: 'bob' })
      while (answer.t === 'intro' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500)) // polled: nothing announces a silence
        answer = await asker.request({ t: 'connect', to: 'bob' })
      }
      expect(answer).to.deep.include({ t: 'error', code: 'unknown_peer' })
    } finally {
      asker.close()
    }

    // bob comes back at instance 3 with the same key (as a client that fails over would): its name is its own there,
    // and alice, who met bob lately, is introduced to it by her own instance at once (a watch across instances).
    bob.kill()
    const again = await client('bob', three)
    const paths = () => alice.stderr.filter((l) => l.includes('direct path to bob')).length
    await alice.waitForLog(
      (l) => l.includes('direct path to bob') && paths() >= 2,
      'alice to meet bob again at instance 3',
    )
    await say(alice, again, 'after the crash, through instance 3')
    await say(again, alice, 'and back')
  })

  it('an instance dies mid-conversation: its clients move to the next instance in their list and the conversation carries on', async () => {
    const [one, two, three] = await instances(3)
    // As users configure several instances: each client lists all three, starting at another one.
    const listed = (...order: ServerProcess[]) => order.map((s) => s.address).join(',')
    const failover = writeConfig({
      plugins: [
        'udp',
        { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: 1_000 } },
        'rsa',
        'reliable',
      ],
    })
    const start = async (name: string, order: ServerProcess[]) => {
      const c = track(await HeadlessClient.start({ name, server: listed(...order), config: failover }))
      await c.waitFor(
        (e) => e.type === 'server' && e.online === true && e.current === order[0].address,
        `${name} registered at ${order[0].address}`,
      )
      return c
    }
    const alice = await start('alice', [one, two, three])
    const bob = await start('bob', [two, three, one])
    await say(alice, bob, 'alice@1 to bob@2')
    await say(bob, alice, 'bob@2 to alice@1')

    const mark = alice.lines.length
    for (let i = 0; i < 5; i++) alice.send({ type: 'send', to: 'bob', text: `during ${i}` })
    one.child.kill('SIGKILL')
    for (let i = 5; i < 10; i++) alice.send({ type: 'send', to: 'bob', text: `during ${i}` })
    await alice.waitFor(
      (e) => e.type === 'server' && e.online === true && e.current === two.address,
      'alice moved to instance 2',
      20_000,
      mark,
    )
    for (let i = 0; i < 10; i++) await bob.message(`during ${i}`)
    const shown = bob.lines
      .filter((e) => e.type === 'message' && String(e.text).startsWith('during '))
      .map((e) => e.text)
    expect(shown, 'in order, once each').to.deep.equal(Array.from({ length: 10 }, (_, i) => `during ${i}`))

    // A newcomer at instance 3 finds alice where she is now, and bob (never moved) still hears from her.
    const carol = await start('carol', [three, one, two])
    await say(carol, alice, 'carol@3 to alice, who moved to 2')
    await say(alice, bob, 'alice@2 to bob@2 after the move')
  })

  it('Redis restarted empty: the instances reconnect, publish their clients again, and chat across instances goes on', async () => {
    const [one, two, three] = await instances(3)
    const alice = await client('alice', one)
    const bob = await client('bob', two)
    await say(alice, bob, 'before the restart')
    await redis!.kill()
    await redis!.restart()
    for (const instance of [one, two, three])
      await instance.waitForLog(
        (l) => /Redis at \S+ is back: this instance's \d+ registration/.test(l),
        'the instance to reconnect',
      )
    // carol is new at instance 3 and knows nothing of the others: she finds bob only through what instance 2 published again.
    const carol = await client('carol', three)
    await say(carol, bob, 'carol@3 to bob@2 after the restart')
    await say(alice, carol, 'alice@1 to carol@3 after the restart')
  })

  it('Redis killed: an instance says so (log, ping, metrics), its own clients still chat, and it recovers when Redis is back', async () => {
    const [one, two] = await instances(2, ['--metrics', '127.0.0.1:0'])
    const alice = await client('alice', one)
    const bob = await client('bob', two)
    await say(alice, bob, 'while Redis runs')
    await redis!.kill()
    const said = await one.waitForLog((l) => l.includes('is unreachable'), 'the instance to say Redis is unreachable')
    expect(said).to.match(/serves its own clients alone .*Check that redis-server runs/)
    const ping = await runCli(['ping', one.address])
    expect(ping.code).to.equal(0)
    expect(ping.stdout).to.include('Redis down')
    expect(ping.stderr).to.include('cannot reach its Redis')
    const metricsLine = one.lines.find((l) => l.startsWith('udsu server metrics on '))!
    const metrics = await (await fetch(metricsLine.replace('udsu server metrics on ', ''))).text()
    expect(metrics).to.match(/^udsu_server_redis_up 0$/m)

    // A client registering now at instance 1 is checked against its own book, and meets alice there.
    const dave = await client('dave', one)
    await say(dave, alice, 'dave@1 to alice@1 without Redis')
    await say(alice, dave, 'and back without Redis')

    await redis!.restart()
    await one.waitForLog((l) => /Redis at \S+ is back/.test(l), 'instance 1 to reconnect')
    await two.waitForLog((l) => /Redis at \S+ is back/.test(l), 'instance 2 to reconnect')
    expect((await runCli(['ping', one.address])).stdout).to.include('Redis up')
    const carol = await client('carol', two)
    await say(carol, dave, 'carol@2 to dave@1 once Redis is back')
  })
})
