// The birthday-punching arithmetic: random ports in the NAT's range, and the odds the defaults buy.
import { expect } from 'chai'
import { hitProbability, NAT_PORT_MAX, NAT_PORT_MIN, openAuxSockets, randomPorts } from '../birthday'

describe('hole-punch: birthday punching', () => {
  it('picks distinct random ports within the range a NAT randomises over', () => {
    const ports = randomPorts(2_500)
    expect(new Set(ports).size).to.equal(ports.length)
    expect(ports.length).to.be.at.least(2_400)
    expect(ports.every((p) => Number.isInteger(p) && p >= NAT_PORT_MIN && p <= NAT_PORT_MAX)).to.equal(true)
  })

  it('stays bounded when asked for more ports than exist', () => {
    const ports = randomPorts(200_000)
    expect(ports.length).to.be.at.most(NAT_PORT_MAX - NAT_PORT_MIN + 1)
  })

  it('gives the published odds: 256 sockets and 1024 probes hit about 98 % of the time; the defaults (2500 in 10 s) over 99.99 %', () => {
    expect(hitProbability(256, 1024)).to.be.within(0.98, 0.99)
    expect(hitProbability(256, 2_500)).to.be.above(0.9999)
  })

  it('opens auxiliary sockets on distinct ports and closes them', async () => {
    const sockets = await openAuxSockets(8, () => undefined)
    expect(new Set(sockets.map((s) => s.local().port)).size).to.equal(8)
    await Promise.all(sockets.map((socket) => socket.close()))
    expect(sockets.every((s) => s.isClosed)).to.equal(true)
  })
})
