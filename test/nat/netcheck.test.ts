// `udsu netcheck` behind real NAT routers of the lab: what it reports behind an endpoint-independent NAT, a symmetric
// one, on a public address, and with UDP blocked. Two servers on two public hosts. The lab's routers do not hairpin;
// one that does could not be built here (docs/DECISIONS.md, netcheck): "yes" is tested on loopback (core/test).
import { expect } from 'chai'
import { buildLab, requireLab, type Lab } from '../lab/lab'
import { runNetcheck, ServerProcess } from '../support/processes'

describe('udsu netcheck behind real NATs (namespace lab)', function () {
  this.timeout(60_000)
  let lab: Lab
  const servers: ServerProcess[] = []
  const addresses: string[] = []

  before(requireLab)
  before(async () => {
    lab = await buildLab({
      nats: [
        { name: 'home', type: 'eim' },
        { name: 'office', type: 'symmetric' },
      ],
      hosts: [
        { name: 'srv' },
        { name: 'srv2' },
        { name: 'pub' },
        { name: 'a', behind: 'home' },
        { name: 'blocked', behind: 'home' },
        { name: 's', behind: 'office' },
      ],
    })
    for (const name of ['srv', 'srv2']) {
      const host = lab.host(name)
      const server = await ServerProcess.start({ host: '0.0.0.0', spawner: host.spawn.bind(host) })
      servers.push(server)
      addresses.push(`${host.ip}:${server.port}`)
    }
  })
  after(async () => {
    for (const server of servers) server.kill()
    await lab?.teardown()
  })

  const netcheck = (hostName: string, servers = addresses) => {
    const host = lab.host(hostName)
    return runNetcheck(['--server', servers.join(','), '--json'], host.spawn.bind(host))
  }

  it("behind an endpoint-independent NAT: the router's address, one port for every destination, no hairpin", async () => {
    const run = await netcheck('a')
    expect(run.code, run.stderr).to.equal(0)
    const report = run.report!
    expect(report).to.include({ udp: true, answered: true, nat: 'eim', hairpinning: false })
    expect(report.public!.address).to.equal(lab.nat('home').wanIp)
    expect(report.public!.port).to.equal(report.local[0].port) // the lab's routers keep the port when it is free
    expect(report.local.map((e) => e.address)).to.deep.equal([lab.host('a').ip])
    expect(report.servers.map((s) => s.answered)).to.deep.equal([true, true])
    for (const check of report.servers) {
      expect(check.public).to.deep.equal(report.public)
      expect(check.altPublic).to.deep.equal(report.public)
      expect(check.rttMs).to.be.above(0)
    }
    expect(report.verdict.join(' ')).to.match(/endpoint-independent/)
    expect(report.verdict.join(' ')).to.match(/does not hairpin/)
  })

  it('behind a symmetric NAT: a new public port per destination, so symmetric, and what that means', async () => {
    const run = await netcheck('s')
    expect(run.code, run.stderr).to.equal(0)
    const report = run.report!
    expect(report).to.include({ udp: true, answered: true, nat: 'symmetric', hairpinning: false })
    expect(report.public!.address).to.equal(lab.nat('office').wanIp)
    const views = report.servers.flatMap((s) => [s.public!, s.altPublic!])
    expect(views.every((e) => e.address === lab.nat('office').wanIp)).to.equal(true)
    expect(new Set(views.map((e) => e.port)).size).to.equal(4) // four destinations, four mappings
    expect(report.verdict.join(' ')).to.match(/symmetric mapping/)
    expect(report.verdict.join(' ')).to.match(/relay/)
  })

  it('behind a symmetric NAT, one server is enough: its two ports see two public ports', async () => {
    const report = (await netcheck('s', addresses.slice(0, 1))).report!
    expect(report.nat).to.equal('symmetric')
    expect(report.servers[0].altPublic!.port).not.to.equal(report.servers[0].public!.port)
  })

  it('on a public address: no NAT, nothing to hairpin', async () => {
    const run = await netcheck('pub')
    expect(run.code, run.stderr).to.equal(0)
    expect(run.report).to.include({ nat: 'none' })
    expect(run.report).not.to.have.property('hairpinning')
    expect(run.report!.public!.address).to.equal(lab.host('pub').ip)
  })

  it('with UDP dropped by the router: no answer, exit 1 and a clear message', async () => {
    const home = lab.nat('home')
    // The router drops what its LAN sends to both servers, silently: as a network that lets no UDP out.
    for (const address of addresses) await home.block(address.split(':')[0])
    try {
      const run = await netcheck('a')
      expect(run.code).to.equal(1)
      expect(run.stderr).to.equal(
        `udsu netcheck: no udsu server answered (${addresses.join(', ')}): UDP is blocked on this network, or the server is down\n`,
      )
      expect(run.report).to.deep.include({ udp: false, answered: false, nat: 'unknown' })
      expect(run.report!.servers.map((s) => s.error)).to.deep.equal(addresses.map(() => 'no answer'))
    } finally {
      for (const address of addresses) await home.block(address.split(':')[0], false)
    }
  })

  it("with UDP blocked by the machine's own firewall: exit 1, and it says where the block is", async () => {
    const host = lab.host('blocked')
    await host.setLoss(1)
    try {
      const run = await netcheck('blocked')
      expect(run.code).to.equal(1)
      // The lab drops in the host's own firewall (iptables OUTPUT), which the kernel tells the sender: EPERM.
      expect(run.stderr).to.equal(
        `udsu netcheck: no udsu server answered (${addresses.join(', ')}): a firewall on this machine refuses to send UDP\n`,
      )
      expect(run.report).to.deep.include({ udp: false, answered: false, nat: 'unknown' })
      expect(run.report!.servers.map((s) => s.error)).to.deep.equal(
        addresses.map(() => 'could not send (EPERM: a firewall on this machine refuses it)'),
      )
      expect(run.report!.verdict.join(' ')).to.match(/needs UDP/)
      expect(await host.lossDrops()).to.be.above(0) // the datagrams went into the block, not nowhere
      // The same host's neighbour behind the same router is answered: it was the block, not the servers.
      expect((await netcheck('a')).code).to.equal(0)
    } finally {
      await host.setLoss(0)
    }
  })
})
