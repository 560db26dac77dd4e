// Proves the lab behaves like real NATs: mapping, filtering, hole punching, LAN paths, timeouts, reboots, loss, cleanup.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { expect } from 'chai'
import { buildLab, cleanupStale, pollUntil, requireLab, NS_PREFIX, type Endpoint, type Lab } from '../lab'
import { UdpProbe, type Datagram } from '../probe'

const REFLECTOR_PORT = 3478

const from =
  (endpoint: Endpoint) =>
  (datagram: Datagram): boolean =>
    datagram.from.address === endpoint.address && datagram.from.port === endpoint.port

function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(' ')[0])
    .filter(Boolean)
}

function rootLinks(): string[] {
  return spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(':')[1]?.trim())
    .filter(Boolean)
    .sort()
}

describe('NAT lab', function () {
  this.timeout(60_000)
  before(requireLab)

  describe('topology', function () {
    let lab: Lab
    let r1: UdpProbe
    let r2: UdpProbe
    const probes: UdpProbe[] = []
    const probe = async (host: string, port?: number): Promise<UdpProbe> => {
      const started = await UdpProbe.start(lab.host(host), { port })
      probes.push(started)
      return started
    }

    before(async function () {
      lab = await buildLab({
        nats: [
          { name: 'eima', type: 'eim' },
          { name: 'eimb', type: 'eim' },
          { name: 'sym', type: 'symmetric' },
          { name: 'timed', type: 'eim' },
        ],
        hosts: [
          { name: 'r1' },
          { name: 'r2' },
          { name: 'a', behind: 'eima' },
          { name: 'a2', behind: 'eima' },
          { name: 'b', behind: 'eimb' },
          { name: 's', behind: 'sym' },
          { name: 't', behind: 'timed' },
        ],
      })
      r1 = await UdpProbe.start(lab.host('r1'), { port: REFLECTOR_PORT, reflect: true })
      r2 = await UdpProbe.start(lab.host('r2'), { port: REFLECTOR_PORT, reflect: true })
    })

    afterEach(async function () {
      await Promise.all(probes.splice(0).map((started) => started.close()))
    })

    after(async function () {
      await lab?.teardown()
    })

    it('gives hosts their addresses: public on 198.18.0.0/24, NATed ones on their LAN with the router as public address', function () {
      expect(lab.host('r1').ip).to.match(/^198\.18\.0\.\d+$/)
      expect(lab.host('r1').publicIp).to.equal(lab.host('r1').ip)
      expect(lab.host('a').ip).to.match(/^10\.\d+\.0\.\d+$/)
      expect(lab.host('a').publicIp).to.equal(lab.nat('eima').wanIp)
      expect(lab.host('a2').nat).to.equal(lab.nat('eima'))
      expect(() => lab.host('nobody')).to.throw(/no host 'nobody'/)
    })

    it('EIM NAT: one socket is seen by two public hosts at the same public address and port, the local port kept', async function () {
      const a = await probe('a', 40001)
      const seenByR1 = await a.discover(r1.local)
      const seenByR2 = await a.discover(r2.local)
      expect(seenByR1).to.deep.equal({ address: lab.nat('eima').wanIp, port: 40001 })
      expect(seenByR2).to.deep.equal(seenByR1)
    })

    it('symmetric NAT: the same socket gets a different public port per destination', async function () {
      const s = await probe('s', 40001)
      const seenByR1 = await s.discover(r1.local)
      const seenByR2 = await s.discover(r2.local)
      expect(seenByR1.address).to.equal(lab.nat('sym').wanIp)
      expect(seenByR2.address).to.equal(lab.nat('sym').wanIp)
      expect(seenByR2.port).to.not.equal(seenByR1.port)
      const mine = (await lab.nat('sym').mappings()).filter((mapping) => mapping.private.port === 40001)
      expect(mine.map((mapping) => mapping.public.port).sort()).to.deep.equal([seenByR1.port, seenByR2.port].sort())
    })

    it('firewall: replies come back, unsolicited datagrams to the WAN are dropped', async function () {
      const a = await probe('a')
      const nat = lab.nat('eima')
      const mapping = await a.discover(r1.local) // the reflector's answer is a reply: it came in
      r1.send(mapping, 'r1-again')
      await a.receive((datagram) => datagram.data === 'r1-again' && from(r1.local)(datagram))

      const dropsBefore = await nat.wanDrops()
      r2.send(mapping, 'unsolicited-from-r2') // r2 was never contacted from this socket
      r1.send({ address: nat.wanIp, port: 9 }, 'unsolicited-to-unmapped-port')
      await pollUntil(
        'the router dropped both unsolicited datagrams',
        async () => (await nat.wanDrops()) >= dropsBefore + 2,
      )
      expect(a.received.map((datagram) => datagram.data)).to.not.include('unsolicited-from-r2')
    })

    it('two hosts behind two EIM NATs hole-punch through the mappings learned from a reflector', async function () {
      const a = await probe('a')
      const b = await probe('b')
      const publicA = await a.discover(r1.local)
      const publicB = await b.discover(r1.local)

      // The first punch dies at b's router (nothing opened there yet), as on the real internet ...
      const dropsB = await lab.nat('eimb').wanDrops()
      a.send(publicB, 'punch-from-a-1')
      await pollUntil("b's router dropped a's first punch", async () => (await lab.nat('eimb').wanDrops()) > dropsB)
      // ... but it opened a's router for b, so b's punch gets through, and opens b's router for a.
      b.send(publicA, 'punch-from-b')
      await a.receive((datagram) => datagram.data === 'punch-from-b' && from(publicB)(datagram))
      a.send(publicB, 'punch-from-a-2')
      await b.receive((datagram) => datagram.data === 'punch-from-a-2' && from(publicA)(datagram))
      expect(b.received.map((datagram) => datagram.data)).to.not.include('punch-from-a-1')
    })

    it('two hosts behind the same NAT reach each other over their LAN addresses', async function () {
      const a = await probe('a')
      const a2 = await probe('a2')
      a.send(a2.local, 'hello-neighbour')
      await a2.receive((datagram) => datagram.data === 'hello-neighbour' && from(a.local)(datagram))
      a2.send(a.local, 'hello-back')
      await a.receive((datagram) => datagram.data === 'hello-back' && from(a2.local)(datagram))
    })

    it('setUdpTimeout is per router namespace, and an idle mapping expires: a late datagram is dropped', async function () {
      const sysctl = '/proc/sys/net/netfilter/nf_conntrack_udp_timeout'
      const rootBefore = readFileSync(sysctl, 'utf8').trim()
      const nat = lab.nat('timed')
      await nat.setUdpTimeout(2)
      expect((await nat.exec('cat', [sysctl])).trim()).to.equal('2')
      expect((await nat.exec('cat', [`${sysctl}_stream`])).trim()).to.equal('2')
      expect(readFileSync(sysctl, 'utf8').trim(), 'the root namespace keeps its own value').to.equal(rootBefore)

      const t = await probe('t')
      const mapping = await t.discover(r1.local)
      r1.send(mapping, 'while-open')
      await t.receive((datagram) => datagram.data === 'while-open')
      const mine = async () => (await nat.mappings()).filter((entry) => entry.private.port === t.port)
      expect(await mine()).to.have.length(1)
      await pollUntil('the idle mapping expired', async () => (await mine()).length === 0, {
        timeoutMs: 15_000,
        intervalMs: 250,
      })

      const drops = await nat.wanDrops()
      r1.send(mapping, 'after-expiry')
      await pollUntil('the router dropped the late datagram', async () => (await nat.wanDrops()) > drops)
      expect(t.received.map((datagram) => datagram.data)).to.not.include('after-expiry')
    })

    it('flush forgets every mapping, as a NAT reboot does', async function () {
      const a = await probe('a')
      const nat = lab.nat('eima')
      const mapping = await a.discover(r1.local)
      expect((await nat.mappings()).some((entry) => entry.private.port === a.port)).to.equal(true)
      await nat.flush()
      expect(await nat.mappings()).to.deep.equal([])

      const drops = await nat.wanDrops()
      r1.send(mapping, 'after-reboot')
      await pollUntil('the rebooted router dropped the datagram', async () => (await nat.wanDrops()) > drops)
      expect(a.received.map((datagram) => datagram.data)).to.not.include('after-reboot')
    })

    it('setLoss(host, 1) drops everything in and out of the host, setLoss(host, 0) restores it', async function () {
      const a = await probe('a')
      const host = lab.host('a')
      const mapping = await a.discover(r1.local)
      try {
        await host.setLoss(1)
        r1.send(mapping, 'lost-inbound')
        await pollUntil('the inbound datagram was dropped', async () => (await host.lossDrops()) >= 1)
        a.send(r1.local, 'lost-outbound')
        await pollUntil('the outbound datagram was dropped', async () => (await host.lossDrops()) >= 2)
        expect(a.received.map((datagram) => datagram.data)).to.not.include('lost-inbound')
        expect(r1.received.map((datagram) => datagram.data)).to.not.include('lost-outbound')
      } finally {
        await host.setLoss(0)
      }
      expect(await a.discover(r1.local)).to.deep.equal(mapping)
      expect(await host.lossDrops()).to.equal(0)
      await host.setLoss(0) // idempotent
      const invalid = await host.setLoss(1.5).then(
        () => undefined,
        (rejection: Error) => rejection,
      )
      expect(invalid?.message).to.match(/probability in \[0, 1\]/)
    })
  })

  describe('lifecycle', function () {
    it('rejects a bad spec, naming every problem at once', async function () {
      const error = await buildLab({
        nats: [{ name: 'n', type: 'full-cone' as 'eim' }],
        hosts: [{ name: 'Bad Name' }, { name: 'x', behind: 'nowhere' }],
      }).then(
        () => undefined,
        (rejection: Error) => rejection,
      )
      expect(error?.message).to.include("nats[0].type must be 'eim' or 'symmetric'")
      expect(error?.message).to.include("hosts[0].name 'Bad Name'")
      expect(error?.message).to.include("hosts[1].behind 'nowhere' names no NAT")
    })

    it('teardown removes every namespace and interface of the run, kills its programs, and is idempotent', async function () {
      const linksBefore = rootLinks()
      const lab = await buildLab({
        nats: [{ name: 'n', type: 'eim' }],
        hosts: [{ name: 'pub' }, { name: 'priv', behind: 'n' }],
      })
      expect(netnsList()).to.include.members([...lab.namespaces])
      expect(lab.namespaces.every((ns) => ns.includes(lab.runId))).to.equal(true)
      expect(rootLinks(), 'no lab interface lives in the root namespace').to.deep.equal(linksBefore)
      const sleeper = lab.host('priv').spawn('sleep', ['60'])
      const sleeperExit = new Promise((resolve) => sleeper.once('exit', (code, signal) => resolve(signal)))

      await lab.teardown()
      expect(await sleeperExit).to.equal('SIGKILL')
      expect(netnsList().filter((ns) => ns.includes(`${NS_PREFIX}${lab.runId}-`))).to.deep.equal([])
      expect(rootLinks()).to.deep.equal(linksBefore)
      await lab.teardown()
    })

    it('cleanupStale removes the namespaces of a dead run and leaves live ones', async function () {
      const deadPid = spawnSync('true').pid // exited already
      const stale = `${NS_PREFIX}${deadPid}-0-net`
      expect(spawnSync('ip', ['netns', 'add', stale]).status).to.equal(0)
      const lab = await buildLab({ hosts: [{ name: 'alive' }] })
      try {
        expect(await cleanupStale()).to.include(stale)
        expect(netnsList()).to.not.include(stale)
        expect(netnsList()).to.include.members([...lab.namespaces])
      } finally {
        spawnSync('ip', ['netns', 'del', stale])
        await lab.teardown()
      }
    })
  })
})
