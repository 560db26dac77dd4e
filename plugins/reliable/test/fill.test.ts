// A peer with a session tries to fill the receiver: 100,000 messages with unique 255-byte ids, from two names. What the
// receiver remembers stays within its bounds (per peer and in total, each id at a fixed size), the inbox journal stays
// within its compaction bound, it opens again quickly, and the real conversation goes on.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { DurableState, INBOX_FILE } from '../durable'
import { useNetwork } from './clients'
import { heapUsed } from '../../../test/support/heap'

const ATTACK_IDS = Number(process.env.FILL_IDS ?? 100_000)
const PER_ATTACKER = ATTACK_IDS / 2
const CHUNK = 2000
/** The receiver's bounds in this test: the default per peer, and a total below what two attackers' windows would add up to. */
const SEEN_PER_PEER = Number(process.env.FILL_PER_PEER ?? 20_000)
const SEEN_TOTAL = Number(process.env.FILL_TOTAL ?? 30_000)
const COMPACT_BYTES = 16 * 1024 * 1024
/** The stated bounds: the journal past compaction by at most one snapshot and a batch; a generous heap bound. */
const MAX_INBOX_BYTES = COMPACT_BYTES + 8 * 1024 * 1024
const MAX_HEAP_GROWTH_BYTES = 24 * 1024 * 1024

describe('reliable: a peer that sends 100,000 unique ids', function () {
  this.timeout(180_000)
  const network = useNetwork()

  it('keeps the ids it remembers, its memory and its journal bounded, and the real conversation goes on', async () => {
    const victimOptions = { seenIdsPerPeer: SEEN_PER_PEER, seenIdsTotal: SEEN_TOTAL, compactBytes: COMPACT_BYTES }
    const bob = await network.start('bob', { reliable: victimOptions, record: false })
    const alice = await network.start('alice')
    // Attackers raise their own limits; the receiver keeps its own.
    const attackers = await Promise.all(
      ['carol', 'dave'].map((name) =>
        network.start(name, { reliable: { maxOutboxMessages: 1_000_000, maxOutboxBytes: 1 << 30 }, record: false }),
      ),
    )
    const before = heapUsed()
    const started = performance.now()

    // In rounds of CHUNK per attacker, each waiting for its acknowledgements: a sender's own queue is not what is tested.
    await Promise.all(
      attackers.map(async (attacker, index) => {
        for (let sent = 0; sent < PER_ATTACKER;) {
          for (const end = Math.min(PER_ATTACKER, sent + CHUNK); sent < end; sent++) {
            // A 255-byte id, unique, in an envelope the receiver's core refuses after reliable has recorded its id.
            const id = `${index}-${sent}-`.padEnd(255, 'x')
            void attacker.client.hooks.transmit.promise('bob', { type: 'chat', id, text: 'fill', ts: Date.now() })
          }
          await attacker.until(`${sent} acknowledged`, () => attacker.counts.receipts >= sent, 60_000)
        }
      }),
    )
    const floodMs = performance.now() - started
    const journal = bob.reliable().stats().journal
    const grown = heapUsed() - before
    const inboxBytes = fs.statSync(path.join(bob.profile, INBOX_FILE)).size
    console.log(
      `      flood: ${ATTACK_IDS} ids in ${Math.round(floodMs)} ms; bob remembers ${journal.seenIds} ids of ${journal.seenPeers} peers; heap +${(grown / 2 ** 20).toFixed(1)} MiB; inbox journal ${(inboxBytes / 2 ** 20).toFixed(1)} MiB`,
    )
    expect(journal.seenIds).to.be.at.most(SEEN_TOTAL)
    expect(journal.seenIds).to.be.at.least(SEEN_PER_PEER) // the newest ids are still remembered
    expect(inboxBytes).to.be.at.most(MAX_INBOX_BYTES)
    expect(grown).to.be.at.most(MAX_HEAP_GROWTH_BYTES)

    // The real conversation goes on, both ways.
    const hello = await alice.client.send('bob', 'still here')
    await bob.until('alice’s message', () => bob.counts.delivered >= 1)
    await alice.until('the receipt', () => alice.states.some((s) => s.id === hello.id && s.state === 'delivered'))
    await bob.client.send('alice', 'so am I')
    await alice.until('bob’s answer', () => alice.delivered.some((m) => m.text === 'so am I'))

    // What bob keeps opens again quickly (the journal is read whole at start).
    await bob.client.stop()
    const opening = performance.now()
    const reopened = DurableState.open(bob.profile, {
      seenIdsPerPeer: SEEN_PER_PEER,
      seenIdsTotal: SEEN_TOTAL,
      compactBytes: COMPACT_BYTES,
    })
    const openMs = performance.now() - opening
    console.log(`      reopened in ${Math.round(openMs)} ms, remembering ${reopened.stats().seenIds} ids`)
    expect(reopened.stats().seenIds).to.be.at.most(SEEN_TOTAL)
    expect(openMs).to.be.below(2000)
    await reopened.close()
  })
})
