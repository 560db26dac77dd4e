// Names cost a peer nothing: thousands of them, each sending data, must not fill the receiver with links. The plugin
// runs on a real profile (journals on disk) with a real peer directory; the peers are ReliableLinks on the test's side,
// one per name, joined to it in memory. What the receiver keeps stays bounded, a real conversation goes on, and a
// name whose link was dropped still has each of its messages delivered exactly once.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { createHooks } from '../../../core/hooks'
import { createLogger } from '../../../core/log'
import { PeerDirectory } from '../../../core/peers'
import { Profile } from '../../../core/profile'
import type { Chat, Identity, Pipeline } from '../../../core/types'
import { heapUsed } from '../../../test/support/heap'
import { FRAME_BUNDLE, unbundle } from '../../../protocol/reliable'
import reliable, { type ReliableHandle, type ReliableOptions } from '../index'
import { ReliableLink } from '../link'
import { MemoryDeliveredStore } from '../store'

const MAX_LINKS = 64
const DIRECTORY_NAMES = 128
const NAMES = Number(process.env.NAMES_FLOOD ?? 3000)
/** Names sending at once: below the table's bound, as links with work are never dropped. */
const BATCH = 40
const WAIT_MS = 30_000
/** What the receiver may grow by over the flood: a link costs some kilobytes, so 3,000 kept links would exceed it. */
const MAX_HEAP_GROWTH_BYTES = 8 * 1024 * 1024

/** The receiver: the reliable plugin alone, its pipeline replaced by an in-memory switch to the test's peers. */
class Receiver {
  readonly hooks = createHooks()
  readonly directory = new PeerDirectory(DIRECTORY_NAMES)
  readonly profile = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-reliable-names-'))
  /** Payloads handed to the app, per name, in order. */
  readonly received = new Map<string, string[]>()
  /** Frames from the receiver to these names are lost. */
  readonly cut = new Set<string>()
  readonly handle: ReliableHandle

  constructor(
    private readonly network: Network,
    options: Partial<ReliableOptions>,
  ) {
    const checked = reliable.options!
    if (typeof checked !== 'function') throw new Error('reliable checks its options with a function')
    const result = checked({ maxRtoMs: 1000, ...options })
    if (!('value' in result)) throw new Error(result.problems.join('; '))
    const pipeline: Pipeline = {
      sendSealed: async (peer, bytes) => {
        if (!this.cut.has(peer)) this.network.toPeer(peer, bytes)
      },
      receiveEnvelope: async (peer, bytes) => {
        const list = this.received.get(peer) ?? []
        list.push(bytes.toString())
        this.received.set(peer, list)
        this.network.changed()
      },
    }
    const chat = { connect: async () => 'direct' } as unknown as Chat
    const deps = {
      hooks: this.hooks,
      logger: createLogger('error'),
      profile: new Profile(this.profile),
      pipeline,
      chat,
      peers: this.directory,
    }
    this.handle = reliable.create(deps, result.value) as unknown as ReliableHandle
  }

  async start(): Promise<void> {
    await this.hooks.init.promise()
    await this.hooks.start.promise()
    this.hooks.ready.call({} as Identity)
  }

  send(peer: string, id: string): Promise<true | undefined> {
    return this.hooks.transmit.promise(peer, { type: 'chat', id, text: id, ts: Date.now() })
  }

  links(): string[] {
    return Object.keys(this.handle.stats().peers)
  }
}

/** One name on the other side: its own link, as a peer's client would hold it. */
class Peer {
  readonly delivered: string[] = []
  readonly acked: string[] = []
  readonly link: ReliableLink
  private timer: NodeJS.Timeout | undefined
  /** A quiet peer (its app suspended): its timers do not fire, so it resends nothing until `wake`. */
  private quiet = false

  constructor(
    readonly name: string,
    network: Network,
  ) {
    this.link = new ReliableLink({
      epoch: 1,
      clock: () => performance.now(),
      maxRtoMs: 1000,
      output: (frame) => network.toReceiver(name, frame),
      deliver: (_id, payload) => {
        this.delivered.push(payload.toString())
        network.changed()
      },
      store: new MemoryDeliveredStore(),
      onAcked: (id) => {
        this.acked.push(id)
        network.changed()
      },
      onDeadline: (deadline) => this.arm(deadline),
    })
  }

  sleep(): void {
    this.quiet = true
    clearTimeout(this.timer)
  }

  wake(): void {
    this.quiet = false
    this.arm(this.link.nextDeadline())
  }

  private arm(deadline: number | undefined): void {
    clearTimeout(this.timer)
    if (deadline === undefined || this.quiet) return
    this.timer = setTimeout(
      () => {
        this.link.tick()
        this.arm(this.link.nextDeadline())
      },
      Math.max(0, deadline - performance.now()),
    )
  }

  send(id: string): void {
    this.link.submit(id, Buffer.from(JSON.stringify({ type: 'chat', id, text: id, ts: Date.now() })))
  }

  close(): void {
    clearTimeout(this.timer)
    this.link.close()
  }
}

class Network {
  receiver!: Receiver
  readonly peers = new Map<string, Peer>()
  private readonly waiting = new Set<() => void>()

  toReceiver(name: string, frame: Buffer): void {
    setImmediate(() => void this.receiver.hooks.unwrap.promise({ peer: name, bytes: frame, sealed: true }))
  }

  toPeer(name: string, bytes: Buffer): void {
    setImmediate(() => {
      const peer = this.peers.get(name)
      if (!peer) return
      for (const frame of bytes[0] === FRAME_BUNDLE ? unbundle(bytes) : [bytes]) peer.link.receive(frame)
    })
  }

  changed(): void {
    for (const check of this.waiting) check()
  }

  /** Resolves when `check` holds, re-checked at every delivery and acknowledgement on either side. */
  until(what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(test)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      }, timeoutMs)
      const test = () => {
        if (!check()) return
        clearTimeout(timer)
        this.waiting.delete(test)
        resolve()
      }
      this.waiting.add(test)
      test()
    })
  }

  peer(name: string): Peer {
    const peer = new Peer(name, this)
    this.peers.set(name, peer)
    return peer
  }
}

describe('reliable: thousands of names sending data', function () {
  this.timeout(180_000)
  let network: Network
  let bob: Receiver | undefined

  beforeEach(() => {
    network = new Network()
    bob = undefined
  })
  afterEach(async () => {
    for (const peer of network.peers.values()) peer.close()
    await bob?.hooks.stop.promise()
    if (bob) fs.rmSync(bob.profile, { recursive: true, force: true })
  })

  it('drops the link of a name the peer directory forgets, with no limit of its own in the way', async () => {
    bob = network.receiver = new Receiver(network, { maxLinks: 1_000_000 })
    await bob.start()
    // Introduced names (no path) that each send one message: the directory keeps DIRECTORY_NAMES of them.
    for (let from = 0; from < 1000; from += BATCH) {
      const batch: Peer[] = []
      for (let i = from; i < from + BATCH; i++) {
        bob.directory.update(`f${i}`, { online: true })
        const peer = network.peer(`f${i}`)
        peer.send(`f${i}-m`)
        batch.push(peer)
      }
      await network.until(`names ${from}.. acknowledged`, () => batch.every((peer) => peer.acked.length === 1))
      for (const peer of batch) {
        peer.close()
        network.peers.delete(peer.name)
      }
    }
    const links = bob.handle.stats().links
    console.log(`      1000 introduced names: ${links} links held, the directory ${bob.directory.size} names`)
    expect(bob.directory.size).to.be.at.most(DIRECTORY_NAMES)
    // What the directory keeps, plus the batch that was sending when its names were forgotten.
    expect(links).to.be.at.most(DIRECTORY_NAMES + BATCH)
  })

  it('keeps a bounded table of links, the conversation goes on, and a dropped name still gets each message delivered once', async () => {
    const receiver = new Receiver(network, { maxLinks: MAX_LINKS })
    bob = network.receiver = receiver
    await receiver.start()
    const received = (name: string) => receiver.received.get(name) ?? []

    // A real conversation, both ways, before the flood.
    receiver.directory.update('alice', { online: true, path: 'direct' })
    const alice = network.peer('alice')
    alice.send('a1')
    await receiver.send('alice', 'b1')
    await network.until(
      'alice and bob hear each other',
      () => received('alice').length === 1 && alice.delivered.length === 1,
    )

    // zed's first message arrives and is acknowledged; its second arrives, but every acknowledgement of it is lost.
    receiver.directory.update('zed', { online: true, path: 'direct' })
    const zed = network.peer('zed')
    zed.send('z1')
    await network.until('z1 acknowledged', () => zed.acked.includes('z1'))
    receiver.cut.add('zed')
    zed.send('z2')
    await network.until('z2 handed to bob', () => received('zed').length === 2)
    // zed then goes quiet: a name that keeps sending stays among the most recently used, and is dropped last.
    zed.sleep()

    // The flood: NAMES names, half of them only introduced (the directory forgets those), half with a path.
    const before = heapUsed()
    let largestTable = 0
    for (let from = 0; from < NAMES; from += BATCH) {
      const batch: Peer[] = []
      for (let i = from; i < Math.min(NAMES, from + BATCH); i++) {
        const name = `n${i}`
        receiver.directory.update(name, i % 2 === 0 ? { online: true } : { online: true, path: 'direct' })
        const peer = network.peer(name)
        peer.send(`${name}-m`)
        batch.push(peer)
      }
      await network.until(`names ${from}.. acknowledged`, () => batch.every((peer) => peer.acked.length === 1))
      largestTable = Math.max(largestTable, receiver.links().length)
      // The senders are done: the test forgets them, so the heap shows what the receiver keeps.
      for (const peer of batch) {
        peer.close()
        network.peers.delete(peer.name)
      }
    }
    const grown = heapUsed() - before
    const stats = receiver.handle.stats()
    console.log(
      `      ${NAMES} names: at most ${largestTable} links held (bound ${MAX_LINKS}), ${stats.linksDropped} dropped; ` +
        `heap +${(grown / 2 ** 20).toFixed(1)} MiB`,
    )
    expect(largestTable).to.be.at.most(MAX_LINKS)
    expect(stats.links).to.be.at.most(MAX_LINKS)
    expect(stats.linksDropped).to.be.at.least(NAMES - MAX_LINKS)
    expect(grown).to.be.at.most(MAX_HEAP_GROWTH_BYTES)

    // zed's link went with the flood (idle: its z2 was delivered; only the ACK never arrived).
    expect(receiver.links()).to.not.include('zed')
    receiver.cut.delete('zed')
    zed.wake()
    zed.send('z3')
    await network.until('z2 and z3 acknowledged to zed', () => zed.acked.includes('z2') && zed.acked.includes('z3'))
    await network.until('z3 handed to bob', () => received('zed').length >= 3)
    expect(received('zed').map((payload) => (JSON.parse(payload) as { id: string }).id)).to.deep.equal([
      'z1',
      'z2',
      'z3',
    ])

    // The conversation goes on, both ways.
    alice.send('a2')
    await receiver.send('alice', 'b2')
    await network.until(
      'alice and bob hear each other again',
      () => received('alice').length === 2 && alice.delivered.length === 2,
    )
    expect(received('alice').map((payload) => (JSON.parse(payload) as { id: string }).id)).to.deep.equal(['a1', 'a2'])
    expect(alice.delivered.map((payload) => (JSON.parse(payload) as { id: string }).id)).to.deep.equal(['b1', 'b2'])
  })
})
