// Scenarios 4-5: symmetric NATs. Symmetric ↔ EIM goes direct by birthday-paradox probing; two symmetric NATs use the relay.
import { expect } from 'chai'
import { directPathLog, exchange, median, pathsTo, record, timedMessage, useNatWorld } from './world'
import type { HeadlessClient } from '../support/processes'

/** Attempts at symmetric ↔ EIM; the target is direct in at least 9 of 10 within 10 s. */
const ATTEMPTS = Number(process.env.UDSU_NAT_ATTEMPTS ?? 10)
const DIRECT_WITHIN_MS = 10_000

describe('NAT scenarios: symmetric NATs (real clients in a namespace lab)', function () {
  this.timeout(180_000)
  const world = useNatWorld(
    {
      nats: [
        { name: 'home', type: 'eim' },
        { name: 'mobile', type: 'symmetric' },
        { name: 'hotel', type: 'symmetric' },
      ],
      hosts: [
        { name: 'srv' },
        { name: 'e', behind: 'home' },
        { name: 's', behind: 'mobile' },
        { name: 't', behind: 'hotel' },
      ],
    },
    { host: 'srv' },
  )

  it('detects each NAT type and tells it at registration', async () => {
    const [eim, sym] = await Promise.all([world().client('e', 'erin', 'alice'), world().client('s', 'sam', 'bob')])
    expect(await eim.waitForLog((l) => l.includes('NAT type:'), "erin's NAT type")).to.include('NAT type: eim')
    expect(await sym.waitForLog((l) => l.includes('NAT type:'), "sam's NAT type")).to.include('NAT type: symmetric')
  })

  it(`4. symmetric ↔ EIM: direct by birthday probing in at least 9 of ${ATTEMPTS} attempts within 10 s, relayed meanwhile`, async () => {
    const firstMessage: number[] = []
    const toDirect: number[] = []
    let direct = 0
    let firstRelayed = 0
    for (let i = 0; i < ATTEMPTS; i++) {
      // Fresh clients each time, so every attempt starts from new NAT mappings; the initiator alternates.
      const [eim, sym] = await Promise.all([
        world().client('e', `erin${i}`, 'alice'),
        world().client('s', `sam${i}`, 'bob'),
      ])
      const [from, to] = i % 2 ? [sym, eim] : [eim, sym]
      const started = Date.now()
      const firstMs = await timedMessage(from, to, DIRECT_WITHIN_MS)
      firstMessage.push(firstMs)
      if (pathsTo(from, to.name)[0] === 'relay') firstRelayed++
      const opened = await from
        .waitFor(
          (e) => e.type === 'connected' && e.path === 'direct',
          `attempt ${i}: a direct path`,
          Math.max(1, DIRECT_WITHIN_MS - (Date.now() - started)),
        )
        .then(
          () => Date.now() - started,
          () => undefined,
        )
      if (opened !== undefined) {
        direct++
        toDirect.push(opened)
        // Found by birthday probing: the symmetric side opened its sockets, the other probed random ports.
        // (Its path is almost always one of those sockets; about 1 hit in 257 lands on its main socket's mapping instead.)
        await sym.waitForLog((l) => /birthday: \d+ sockets punching/.test(l), `${sym.name}'s birthday sockets`)
        await eim.waitForLog((l) => /birthday: probing \d+ random ports/.test(l), `${eim.name}'s random probes`)
        await directPathLog(sym, eim.name)
      } else {
        expect(pathsTo(from, to.name)).to.deep.equal(['relay'])
        // Rare (3 of 180 attempts once); say what each side did, for whoever looks into it.
        const birthday = (c: HeadlessClient) =>
          c.stderr.filter((l) => /birthday|direct path|relay/.test(l)).map((l) => `        ${c.name}: ${l}`)
        console.log(
          `      attempt ${i} (${from.name} → ${to.name}): no direct path within ${DIRECT_WITHIN_MS} ms\n${[...birthday(sym), ...birthday(eim)].join('\n')}`,
        )
      }
      await timedMessage(to, from, DIRECT_WITHIN_MS)
      world().killClients()
    }
    const note = `direct in ${direct}/${ATTEMPTS}, median ${median(toDirect)} ms to direct (max ${Math.max(...toDirect)} ms); first message relayed in ${firstRelayed}/${ATTEMPTS}`
    record({
      scenario: '4. symmetric ↔ EIM',
      path: firstRelayed ? 'relay → direct' : 'direct',
      firstMessageMs: median(firstMessage),
      note,
    })
    expect(direct).to.be.at.least(Math.ceil(ATTEMPTS * 0.9))
  })

  it('5. both behind symmetric NATs: relayed automatically, first message within 5 s', async () => {
    const [sam, tom] = await Promise.all([world().client('s', 'sam', 'bob'), world().client('t', 'tom', 'carol')])
    const result = await exchange('5. symmetric ↔ symmetric', sam, tom, 5_000)
    record(result)
    expect(pathsTo(sam, 'tom')).to.deep.equal(['relay'])
    expect(pathsTo(tom, 'sam')).to.deep.equal(['relay'])
    expect(result.firstMessageMs).to.be.below(5_000)
  })
})
