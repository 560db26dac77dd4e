// The receiver's promise, end to end: with a slow disk, no frame that acknowledges a message leaves before the
// message's record is on disk (fdatasync done), so an ACK never covers a message that a crash of the machine could lose.
import { expect } from 'chai'
import * as fs from 'node:fs'
// The module object itself (a namespace import is read-only): the journal's calls go through its properties.
import fsModule = require('node:fs')
import type { RendezvousServer } from '../../../server/index'
import { startClient, startServer, type TestClient } from './clients'
import { INBOX_FILE } from '../durable'
import { decodeFrame, FRAME_BUNDLE, unbundle } from '../../../protocol/reliable'

/** How much slower every fdatasync is made: far longer than a loopback round trip, so an early ACK cannot hide. */
const SLOW_SYNC_MS = 150

describe('reliable plugin durability (in-process clients, a slowed fdatasync)', function () {
  this.timeout(30_000)
  let server: RendezvousServer
  const running: TestClient[] = []
  const realFdatasync = fs.fdatasync

  afterEach(async () => {
    fsModule.fdatasync = realFdatasync
    await Promise.all(running.splice(0).map((c) => c.client.stop()))
    await server?.close()
  })

  it("sends no acknowledgement of a received message before its inbox record is fdatasync'ed", async () => {
    let address: string
    ;({ server, address } = await startServer())
    const alice = await startClient('alice', address)
    const bob = await startClient('bob', address)
    running.push(alice, bob)
    await alice.client.connect('bob')

    // Every fdatasync of bob's inbox takes SLOW_SYNC_MS longer; when each one completes is recorded.
    const bobInbox = fs.realpathSync(`${bob.profile}/${INBOX_FILE}`)
    const inboxSynced: number[] = []
    fsModule.fdatasync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      let file = ''
      try {
        file = fs.readlinkSync(`/proc/self/fd/${fd}`)
      } catch {
        // not a file we watch
      }
      setTimeout(
        () =>
          realFdatasync(fd, (error) => {
            if (file === bobInbox) inboxSynced.push(performance.now())
            callback(error)
          }),
        SLOW_SYNC_MS,
      )
    }) as typeof fs.fdatasync

    // When bob's reliable plugin first sends alice a frame that acknowledges something (read before rsa seals it).
    const acksToAlice: number[] = []
    const acknowledges = (bytes: Buffer) => {
      const frame = decodeFrame(bytes)
      return frame.ack !== undefined && (frame.ack.cum > 0 || frame.ack.ranges.length > 0)
    }
    bob.client.hooks.encode.tapPromise({ name: 'test', stage: -100 }, async (packet) => {
      const frames = packet.bytes[0] === FRAME_BUNDLE ? unbundle(packet.bytes) : [packet.bytes]
      if (packet.peer === 'alice' && frames.some(acknowledges)) acksToAlice.push(performance.now())
      return packet
    })

    const message = await alice.client.send('bob', 'keep me')
    await alice.until('the receipt', () => alice.states.some((s) => s.id === message.id && s.state === 'delivered'))
    expect(bob.delivered.map((m) => m.text)).to.deep.equal(['keep me'])
    expect(inboxSynced.length, "bob's inbox was fdatasync'ed").to.be.at.least(1)
    expect(acksToAlice.length, 'bob acknowledged').to.be.at.least(1)
    expect(acksToAlice[0], 'the first ACK left after the inbox record was on disk').to.be.at.least(inboxSynced[0])
  })
})
