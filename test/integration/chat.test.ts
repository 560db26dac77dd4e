// Real processes on loopback: a rendezvous server and headless clients chatting through the JSON-lines contract.
import { expect } from 'chai'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  cleanupTemp,
  CLI,
  trackProcesses,
  HeadlessClient,
  ServerProcess,
  tempDir,
  writeConfig,
  type Event,
} from '../support/processes'

describe('chat between headless clients (real processes on loopback)', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it('delivers messages both ways between every pair of three clients, over direct paths', async () => {
    const server = track(await ServerProcess.start())
    const names = ['alice', 'bob', 'carol']
    const clients = await Promise.all(
      names.map((name) => HeadlessClient.start({ name, server: server.address }).then(track)),
    )

    const sent: Array<{ from: HeadlessClient; to: HeadlessClient; text: string }> = []
    for (const from of clients) {
      for (const to of clients) {
        if (from === to) continue
        const text = `${from.name} → ${to.name}: привет 👋 #${sent.length}`
        sent.push({ from, to, text })
        from.send({ type: 'send', to: to.name, text })
      }
    }
    for (const { from, to, text } of sent) {
      const message = await to.message(text)
      expect(message.from).to.equal(from.name)
      expect(message.id).to.match(/^[0-9a-f]{32}$/)
      expect(message.ts).to.be.a('number')
      await from.waitFor(
        (e) => e.type === 'sent' && e.to === to.name && e.id === message.id,
        `${from.name} to see its message to ${to.name} sent`,
      )
    }
    for (const client of clients) {
      // Each message arrived exactly once, and every path was direct.
      expect(client.messages()).to.have.length(2)
      const connected = client.lines.filter((e) => e.type === 'connected')
      expect(connected.map((e) => e.path)).to.deep.equal(connected.map(() => 'direct'))
      expect(connected.length).to.be.greaterThan(0)
      expect(client.lines.filter((e) => e.type === 'not-json')).to.deep.equal([])
    }
  })

  it('lists who is online', async () => {
    const server = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    alice.send({ type: 'peers' })
    const peers = await alice.waitFor((e) => e.type === 'peers', 'the peer list')
    expect(peers.peers).to.deep.include({ name: 'bob', online: true })
    expect((peers.peers as Array<{ name: string }>).map((p) => p.name)).not.to.include('alice')
  })

  it('refuses a name that is online under another key, and says so', async () => {
    const server = track(await ServerProcess.start())
    track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    const impostor = track(HeadlessClient.spawn({ name: 'bob', key: 'dave', server: server.address }))
    const error = await impostor.waitFor((e) => e.type === 'error', 'the refusal')
    expect(error.message).to.match(/bob.*belongs to another key/)
  })

  it('reports a peer that leaves, keeps a message to it pending, and delivers it once the peer is back', async () => {
    const server = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    alice.send({ type: 'send', to: 'bob', text: 'are you there?' })
    await bob.message('are you there?')
    const bobProfile = bob.profile
    expect(await bob.quit()).to.equal(0)
    const lost = await alice.waitFor((e) => e.type === 'lost' && e.peer === 'bob', 'bob to be lost')
    expect(lost.reason).to.equal('left')
    const mark = alice.lines.length
    alice.send({ type: 'send', to: 'bob', text: 'hello?' })
    const pending = await alice.waitFor(
      (e) => e.type === 'pending' && e.to === 'bob',
      'the message to wait',
      15_000,
      mark,
    )
    // Bob comes back with the same profile: the message waiting in alice's outbox reaches him, once.
    const bobAgain = track(await HeadlessClient.start({ name: 'bob', server: server.address, profile: bobProfile }))
    const message = await bobAgain.message('hello?', 30_000)
    expect(message.id).to.equal(pending.id)
    await alice.waitFor((e) => e.type === 'delivered' && e.id === pending.id, 'the delivery receipt', 30_000)
    expect(bobAgain.messages().filter((m) => m.id === pending.id)).to.have.length(1)
    expect(alice.lines.some((e) => e.type === 'error' && e.id === pending.id)).to.equal(false)
  })

  it('registers a client started before its server once the server comes up', async () => {
    const port = await freePort()
    const config = writeConfig({
      plugins: ['udp', { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: 500 } }, 'rsa'],
    })
    const alice = track(await HeadlessClient.start({ name: 'alice', server: `127.0.0.1:${port}`, config }))
    const offline = await alice.waitFor((e) => e.type === 'server', 'the server state')
    expect(offline.online).to.equal(false)
    const server = track(await ServerProcess.start({ port }))
    await alice.waitFor((e) => e.type === 'server' && e.online === true, 'alice to register')
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address, config }))
    bob.send({ type: 'send', to: 'alice', text: 'you made it' })
    await alice.message('you made it')
  })

  it('starts an embedded server when none answers on this machine, so two clients chat with no setup', async () => {
    const port = await freePort()
    const alice = track(await HeadlessClient.start({ name: 'alice', server: `127.0.0.1:${port}` }))
    await alice.waitFor((e) => e.type === 'server' && e.online === true, 'alice to register at her own embedded server')
    const bob = track(await HeadlessClient.start({ name: 'bob', server: `127.0.0.1:${port}` }))
    await bob.waitFor((e) => e.type === 'server' && e.online === true, 'bob to register')
    bob.send({ type: 'send', to: 'alice', text: 'zero setup' })
    alice.send({ type: 'send', to: 'bob', text: 'indeed' })
    await alice.message('zero setup')
    await bob.message('indeed')
  })

  it('answers a bad input line with an error event and goes on', async () => {
    const server = track(await ServerProcess.start())
    const alice = track(await HeadlessClient.start({ name: 'alice', server: server.address }))
    const bob = track(await HeadlessClient.start({ name: 'bob', server: server.address }))
    alice.child.stdin.write('this is not json\n')
    alice.send({ type: 'launch-missiles' })
    alice.send({ type: 'send', to: 'bob' })
    alice.send({ type: 'send', to: 'not a name!', text: 'x' })
    const errors: Event[] = []
    for (let i = 0; i < 4; i++)
      errors.push(await alice.waitFor((e) => e.type === 'error' && !errors.includes(e), `error ${i + 1}`))
    expect(errors.map((e) => e.message)).to.satisfy((messages: string[]) =>
      [/not a JSON object/, /unknown command type/, /needs "to" and "text"/, /not a valid name/].every((re) =>
        messages.some((m) => re.test(m)),
      ),
    )
    alice.send({ type: 'send', to: 'bob', text: 'still here' })
    await bob.message('still here')
  })

  it('exits 2 for a bad --server list, naming the entry', () => {
    for (const [list, message] of [
      ['127.0.0.1:1,,127.0.0.1:2', 'udsu: --server has an empty entry (server 2 of 3): write HOST:PORT,HOST:PORT'],
      ['127.0.0.1:1,nowhere', 'udsu: --server "nowhere" is not host:port (e.g. 127.0.0.1:7777)'],
      ['127.0.0.1:1,127.0.0.1:1', 'udsu: --server names 127.0.0.1:1 twice'],
    ]) {
      const result = spawnSync(process.execPath, [CLI, '--server', list, '--name', 'alice', '--frontend', 'headless'], {
        encoding: 'utf8',
      })
      expect(result.status, result.stderr).to.equal(2)
      expect(result.stderr.split('\n')[0]).to.equal(message)
      expect(result.stdout).to.equal('')
    }
  })

  it('exits non-zero with a message naming the bad key for an invalid config', () => {
    const dir = tempDir()
    const file = path.join(dir, 'udsu.config.js')
    fs.writeFileSync(
      file,
      "module.exports = { sever: '1.2.3.4:5', plugins: [{ resolve: 'hole-punch', options: { keepaliveMs: 'soon' } }] }",
    )
    const result = spawnSync(process.execPath, [CLI, '--config', file, '--name', 'alice'], { encoding: 'utf8' })
    expect(result.status).to.equal(2)
    expect(result.stderr).to.include(file)
    expect(result.stderr).to.match(/sever is not a known option \(did you mean "server"\?\)/)
    expect(result.stderr).to.match(/keepaliveMs must be a number/)
    expect(result.stdout).to.equal('')
  })
})

async function freePort(): Promise<number> {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}

describe('slash commands through the headless contract', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('runs /help, /fingerprint and /trust and answers with info and error events', async () => {
    const server = await ServerProcess.start()
    const alice = await HeadlessClient.start({ name: 'alice', server: server.address })
    try {
      alice.send({ type: 'command', line: '/help' })
      const help = await alice.waitFor(
        (e) => e.type === 'info' && String(e.text).includes('/fingerprint'),
        'the help text',
      )
      expect(help.text).to.match(/\/trust NAME/)
      alice.send({ type: 'command', line: '/fingerprint' })
      const ready = alice.lines.find((e) => e.type === 'ready')!
      await alice.waitFor(
        (e) => e.type === 'info' && e.text === `your fingerprint: ${ready.fingerprint}`,
        'the fingerprint',
      )
      alice.send({ type: 'command', line: '/trust bob' })
      await alice.waitFor(
        (e) => e.type === 'error' && /the key of bob has not changed/.test(String(e.message)),
        'the refusal to trust',
      )
      alice.send({ type: 'command', line: '/nonsense' })
      await alice.waitFor(
        (e) => e.type === 'error' && /unknown command \/nonsense/.test(String(e.message)),
        'the unknown command',
      )
    } finally {
      alice.kill()
      server.kill()
    }
  })
})
