// A real registration captured on the wire, both ways: the LAN endpoints never cross in clear (they go sealed in
// `prove`), yet the server still hands them to peers, and a peer on the same LAN reaches them directly.
import os from 'node:os'
import { expect } from 'chai'
import { decodeFrame, FrameKind } from '../../core/wire'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

/** The addresses hole-punch registers as our LAN endpoints (non-internal IPv4). */
const lanAddresses = Object.values(os.networkInterfaces())
  .flat()
  .filter((i) => i && i.family === 'IPv4' && !i.internal)
  .map((i) => i!.address)

describe('what a registration shows on the wire', function () {
  this.timeout(60_000)
  after(cleanupTemp)

  it('carries no LAN endpoint in clear, and peers still get them (sealed) and connect directly', async function () {
    if (lanAddresses.length === 0) return this.skip() // no LAN address to hide (the NAT lab covers LANs too)
    const toServer: Buffer[] = []
    const server = await startServer({ observe: (bytes) => void toServer.push(Buffer.from(bytes)) })
    const serverPort = server.address().port
    const fromServer: Buffer[] = []
    const lanSenders: string[] = []
    const clients: TestClient[] = []
    for (const name of ['alice', 'bob']) {
      const client = makeClient(name, `127.0.0.1:${serverPort}`)
      client.client.hooks.receive.tap({ name: 'capture', stage: -1000 }, (datagram) => {
        if (datagram.from.port === serverPort) fromServer.push(Buffer.from(datagram.bytes))
        else if (lanAddresses.includes(datagram.from.address)) lanSenders.push(name)
        return undefined
      })
      await client.client.start()
      clients.push(client)
    }
    const [alice, bob] = clients
    const sent = await alice.client.send('bob', 'over the LAN')
    await bob.message('over the LAN')
    await alice.state(sent.id, 'delivered')
    expect(alice.connected.map((c) => c.path)).to.include('direct')
    // Bob heard alice from her LAN address: she punched his LAN endpoint, which only the (sealed) intro told her.
    expect(lanSenders).to.include('bob')

    const clear = [...toServer, ...fromServer].filter((bytes) => decodeFrame(bytes)?.kind !== FrameKind.Channel)
    expect(
      clear.some((bytes) => bytes.includes('"t":"register"')),
      'the capture holds the registration',
    ).to.equal(true)
    expect(
      clear.some((bytes) => bytes.includes('"t":"prove"')),
      'a proof in clear',
    ).to.equal(false)
    // Each LAN endpoint is this address with the client's port: the address alone must not appear.
    for (const address of lanAddresses) {
      expect(
        clear.some((bytes) => bytes.includes(address)),
        `the LAN address ${address} crossed in clear`,
      ).to.equal(false)
    }
    process.stdout.write(
      `      capture: ${toServer.length + fromServer.length} datagrams to and from the server, ${clear.length} in clear\n`,
    )
    for (const client of clients) await client.client.stop()
    await server.close()
  })
})
