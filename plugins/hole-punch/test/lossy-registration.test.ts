// Registering over a lossy link: a registration is four round trips in a row, and a lost answer is loss, not a server
// gone. A later step is tried three times; one whose answers were all lost starts the registration over at once; a lost
// hello is tried again soon.
import { expect } from 'chai'
import { decodeJson, FrameKind } from '../../../core/wire'
import { makeClient, startServer } from '../../../test/support/inprocess'
import { cleanupTemp } from '../../../test/support/processes'

describe('hole-punch: registering over a lossy link', function () {
  this.timeout(30_000)
  after(cleanupTemp)

  /**
   * Starts alice with the first `count` server answers of kind `t` lost; resolves with the ms until she is online.
   * `registered` is the first answer sealed under the new channel (a CHANNEL frame), the others come in clear.
   */
  async function onlineAfterLosing(t: 'cookie' | 'registered', count: number): Promise<number> {
    const server = await startServer()
    const alice = makeClient('alice', `127.0.0.1:${server.address().port}`, {
      plugins: [
        { resolve: 'udp', options: {} },
        { resolve: 'hole-punch', options: {} },
        { resolve: 'rsa', options: {} },
      ],
    })
    let lost = 0
    alice.client.hooks.receive.tap({ name: 'lossy-link', stage: -1000 }, ({ frame }) => {
      const answer =
        frame?.kind === FrameKind.Channel
          ? 'registered'
          : frame?.kind === FrameKind.Server
            ? decodeJson(frame.body)?.t
            : undefined
      if (lost >= count || answer !== t) return undefined
      lost++
      return true
    })
    const online = new Promise<number>((resolve) =>
      alice.client.hooks.server.tap('test', (state) => state.online && resolve(Date.now())),
    )
    try {
      const started = Date.now()
      await alice.client.start()
      const ms = (await online) - started
      expect(lost).to.equal(count)
      return ms
    } finally {
      await alice.client.stop()
      await server.close()
    }
  }

  it('tries a later step a third time before starting over (the server answered the hello)', async () => {
    // Two `registered` answers lost (one step in eight at 20 % loss): the third try, 1.5 s in, gets through.
    const ms = await onlineAfterLosing('registered', 2)
    expect(ms, `online after ${ms} ms`).to.be.within(1_400, 2_400)
  })

  it('starts over at once when every answer of a later step is lost', async () => {
    // All three `registered` answers lost: 3 s of waiting for them, then a new registration at once, not 2 s later.
    const ms = await onlineAfterLosing('registered', 3)
    expect(ms, `online after ${ms} ms`).to.be.within(2_900, 4_000)
  })

  it('tries a hello that went unanswered again after 500 ms, not 2 s', async () => {
    const ms = await onlineAfterLosing('cookie', 2)
    expect(ms, `online after ${ms} ms`).to.be.below(2_500)
  })
})
