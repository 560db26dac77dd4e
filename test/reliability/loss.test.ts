// Real client processes in lab hosts, with real packet loss: iptables statistic DROP on every datagram arriving at
// alice's and bob's hosts, so each datagram between them is dropped with probability P, both ways.
import { expect } from 'chai'
import { buildLab, requireLab, type Lab } from '../lab/lab'
import { cleanupTemp, type HeadlessClient } from '../support/processes'
import {
  expectExactlyInOrder,
  inputLossDrops,
  labClient,
  labServer,
  linkStats,
  numbered,
  received,
  reliableConfig,
  sendAll,
  setInputLoss,
  stateIds,
  waitForCount,
  waitForLast,
} from './support'

const MESSAGES = 1000
const RATES = [0, 0.05, 0.2, 0.3]

describe('reliable delivery over real sockets with packet loss (lab)', function () {
  this.timeout(120_000)
  before(requireLab)
  let lab: Lab
  let server: string
  let config: string
  before(() => (config = reliableConfig(1000))) // per suite: another suite's cleanupTemp removes temp files
  const results: string[] = []

  before(async () => {
    lab = await buildLab({ hosts: [{ name: 'server' }, { name: 'alice' }, { name: 'bob' }] })
    server = await labServer(lab.host('server'))
  })
  after(async () => {
    if (results.length)
      console.log(`\n      loss   time (s)   drops   retransmissions a→b / b→a   timeouts a / b\n${results.join('\n')}`)
    await lab?.teardown()
    cleanupTemp()
  })

  for (const rate of RATES) {
    it(`carries ${MESSAGES} messages each way at once at ${rate * 100} % loss: none lost, none twice, in order, each acknowledged`, async () => {
      const alice = await labClient(lab.host('alice'), 'alice', server, config)
      const bob = await labClient(lab.host('bob'), 'bob', server, config)
      try {
        // Open the path and the secure session before the loss starts: this test is about the messages.
        alice.send({ type: 'send', to: 'bob', text: 'hello' })
        await bob.message('hello')
        await Promise.all([setInputLoss(lab.host('alice'), rate), setInputLoss(lab.host('bob'), rate)])

        const tag = `p${rate}`
        const toBob = numbered(`${tag} a`, MESSAGES)
        const toAlice = numbered(`${tag} b`, MESSAGES)
        const started = Date.now()
        sendAll(alice, 'bob', toBob)
        sendAll(bob, 'alice', toAlice)
        await Promise.all([waitForLast(bob, toBob, 100_000), waitForLast(alice, toAlice, 100_000)])
        await Promise.all([lastReceipt(alice, 'bob', MESSAGES + 1), lastReceipt(bob, 'alice', MESSAGES)])
        const seconds = (Date.now() - started) / 1000
        const drops = (await inputLossDrops(lab.host('alice'))) + (await inputLossDrops(lab.host('bob')))
        await Promise.all([setInputLoss(lab.host('alice'), 0), setInputLoss(lab.host('bob'), 0)])

        expectExactlyInOrder(received(bob, 'alice', `${tag} a`), toBob)
        expectExactlyInOrder(received(alice, 'bob', `${tag} b`), toAlice)
        for (const [client, peer] of [
          [alice, 'bob'],
          [bob, 'alice'],
        ] as const) {
          const delivered = stateIds(client, 'delivered', peer)
          expect(new Set(delivered).size).to.equal(delivered.length)
          expect(delivered).to.deep.equal(stateIds(client, 'pending', peer))
          expect(client.lines.filter((e) => e.type === 'error')).to.deep.equal([])
        }
        if (rate > 0) expect(drops).to.be.greaterThan(0)

        expect(await alice.quit()).to.equal(0)
        expect(await bob.quit()).to.equal(0)
        const a = linkStats(alice, 'bob')
        const b = linkStats(bob, 'alice')
        if (rate > 0) expect(a?.retransmissions).to.be.greaterThan(0)
        results.push(
          `      ${String(rate * 100).padStart(3)} %   ${seconds.toFixed(2).padStart(8)}   ${String(drops).padStart(5)}   ` +
            `${String(a?.retransmissions).padStart(15)} / ${String(b?.retransmissions).padEnd(10)}   ${a?.timeouts} / ${b?.timeouts}`,
        )
      } finally {
        alice.kill()
        bob.kill()
      }
    })
  }
})

/** Waits for the receipt of the `count`-th message to `peer` (receipts come in order). */
async function lastReceipt(client: HeadlessClient, peer: string, count: number): Promise<void> {
  await waitForCount(client, (e) => e.type === 'pending' && e.to === peer, count, `${count} pending`)
  const last = stateIds(client, 'pending', peer)[count - 1]
  await client.waitFor(
    (e) => e.type === 'delivered' && e.id === last,
    `the receipt of message ${count} to ${peer}`,
    100_000,
  )
}
