import { expect } from 'chai'
import { complete, pair, payloadOf } from './harness'

describe('reliable link: congestion window (RFC 9002)', () => {
  it('keeps the window through a timeout that lost nothing (a delay spike, a busy loop)', () => {
    const { net, a, b } = pair({ seed: 11, delayMs: 10 })
    for (let i = 0; i < 20; i++) a.submit(`w${i}`, payloadOf(i, 100))
    expect(net.run(() => complete(a, b), 60_000)).to.equal(true)
    const before = a.link.stats().cwnd
    // ACKs now take 400 ms, four times the RTO: the timer fires while every frame is on its way.
    net.configure({ delayMs: 200 })
    for (let i = 0; i < 300; i++) a.submit(`m${i}`, payloadOf(i, 100))
    let smallest = Infinity
    expect(net.run(() => ((smallest = Math.min(smallest, a.link.stats().cwnd)), complete(a, b)), 600_000)).to.equal(
      true,
    )
    const stats = a.link.stats()
    expect(stats.timeouts).to.be.at.least(1)
    expect(stats.fastRetransmits).to.equal(0)
    expect(smallest).to.be.at.least(before)
    expect(b.received.map((m) => m.id)).to.deep.equal(a.submitted)
  })

  it('halves the window once for several losses in one round trip', () => {
    const lost = new Set([40, 43, 47])
    const { net, a, b } = pair({
      seed: 12,
      delayMs: 20,
      dropIf: (to, frame, n) => to === 'b' && frame[0] === 1 && lost.has(n),
    })
    for (let i = 0; i < 200; i++) a.submit(`m${i}`, payloadOf(i, 100))
    let before = 0
    let smallest = Infinity
    const watch = () => {
      const { cwnd, fastRetransmits } = a.link.stats()
      if (fastRetransmits === 0) before = cwnd
      else smallest = Math.min(smallest, cwnd)
      return complete(a, b)
    }
    expect(net.run(watch, 600_000)).to.equal(true)
    expect(a.link.stats().fastRetransmits).to.equal(3)
    expect(a.link.stats().timeouts).to.equal(0)
    // Halved once (the ACK that finds the loss may first grow the window by the frames it acknowledges), not three times.
    expect(smallest).to.be.within(before / 2, before / 2 + 8)
  })

  it('drops to the floor only after persistent congestion: every frame over three probe timeouts lost', () => {
    let outage = false
    const { net, a, b } = pair({ seed: 13, delayMs: 10, dropIf: () => outage }, { minWindow: 4 })
    for (let i = 0; i < 20; i++) a.submit(`w${i}`, payloadOf(i, 100))
    expect(net.run(() => complete(a, b), 60_000)).to.equal(true)
    outage = true
    for (let i = 0; i < 100; i++) a.submit(`m${i}`, payloadOf(i, 100))
    // Timeouts at 100, 200, 400, 800 ms from the last send: more than three PTOs of nothing getting through.
    net.run(() => a.link.stats().timeouts >= 4, 600_000)
    const during = a.link.stats()
    expect(during.cwnd).to.be.above(4) // timeouts alone change no window
    expect(during.retransmissions + during.dataFramesSent).to.be.below(200) // two probes per timeout, not a window
    outage = false
    let smallest = Infinity
    expect(net.run(() => ((smallest = Math.min(smallest, a.link.stats().cwnd)), complete(a, b)), 600_000)).to.equal(
      true,
    )
    expect(smallest).to.equal(4)
    expect(b.received.map((m) => m.id)).to.deep.equal(a.submitted)
  })
})
