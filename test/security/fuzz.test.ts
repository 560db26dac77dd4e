// A bounded fuzz run against a live server and a live client: random and mutated datagrams, no crash, memory flat, service on.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import type { Transport } from '../../core/types'
import { makeClient, startServer, type TestClient } from '../support/inprocess'
import { cleanupTemp } from '../support/processes'

const DATAGRAMS = 100_000
const SEED = Number(process.env.UDSU_FUZZ_SEED ?? 0x5eed)

/** xorshift32: the same seed gives the same run. */
function prng(seed: number) {
  let x = seed >>> 0 || 1
  return (bound: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % bound
  }
}

function mutate(seed: Buffer, random: (bound: number) => number): Buffer {
  const out = Buffer.from(seed)
  switch (random(4)) {
    case 0: // flip a few bits
      for (let i = random(4) + 1; i > 0 && out.length; i--) out[random(out.length)] ^= 1 << random(8)
      return out
    case 1: // truncate
      return out.subarray(0, random(out.length + 1))
    case 2: // overwrite a run with random bytes
      for (let i = random(out.length + 1), end = Math.min(out.length, i + random(32)); i < end; i++)
        out[i] = random(256)
      return out
    default: // splice random bytes in
      return Buffer.concat([
        out.subarray(0, random(out.length + 1)),
        Buffer.from(Array.from({ length: random(64) }, () => random(256))),
        out.subarray(random(out.length + 1)),
      ])
  }
}

describe('fuzzing a live server and client', function () {
  this.timeout(120_000)
  after(cleanupTemp)

  it(`survives ${DATAGRAMS} random and mutated datagrams with memory flat and clients still served`, async () => {
    // Limits off, so every datagram reaches the parsers (the flood test covers the limits).
    const server = await startServer({
      limits: { perSecond: 1e9, burst: 1e9, registrationsPerSecond: 1e9, registrationBurst: 1e9 },
    })
    const address = `127.0.0.1:${server.address().port}`
    const clients: TestClient[] = []
    const seeds: Buffer[] = []
    for (const name of ['alice', 'bob']) {
      const client = makeClient(name, address)
      client.client.hooks.receive.tap(
        { name: 'seeds', stage: -1000 },
        (d) => void (seeds.length < 200 && seeds.push(Buffer.from(d.bytes))),
      )
      await client.client.start()
      clients.push(client)
    }
    const [alice, bob] = clients
    await alice.client.send('bob', 'before the storm')
    await bob.message('before the storm')
    const alicePort = (alice.client.container.resolve('transports') as { primary(): Transport }).primary().local().port

    const random = prng(SEED)
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    const datagram = (i: number): Buffer => {
      switch (i % 3) {
        case 0:
          return Buffer.from(Array.from({ length: random(1400) }, () => random(256)))
        case 1:
          return mutate(seeds[random(seeds.length)], random)
        default: // a valid frame header over a random body reaches the parsers behind it
          return Buffer.concat([
            Buffer.from([0xd5, 1, 1 + random(5)]),
            Buffer.from(Array.from({ length: random(1200) }, () => random(256))),
          ])
      }
    }
    const heap = () => {
      ;(globalThis as { gc?: () => void }).gc?.()
      return process.memoryUsage().heapUsed
    }
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        socket.send(datagram(i), i % 2 ? server.address().port : alicePort, '127.0.0.1')
        // Let the receivers drain now and then, so the run measures handling, not socket buffer overflow.
        if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
      }
    }

    await send(0, 10_000) // warm up, so the heap measures steady state
    const before = heap()
    await send(10_000, DATAGRAMS)
    await new Promise((resolve) => setTimeout(resolve, 200)) // the last datagrams are in flight on loopback
    const after = heap()
    socket.close()

    const received = server.stats.received
    process.stdout.write(
      `      fuzz: ${DATAGRAMS} datagrams (seed ${SEED}), server received ${received}, dropped as malformed ${server.stats.malformed}, ` +
        `client dropped ${alice.client.stats.dropped}; heap ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MiB\n`,
    )
    expect(received).to.be.greaterThan(0.9 * (DATAGRAMS / 2))
    expect(server.online).to.equal(2) // nothing the fuzzer sent registered anyone
    expect(after - before).to.be.lessThan(16 * 2 ** 20)

    // Everyone is still served: the conversation goes on both ways, and a newcomer registers and connects.
    await bob.client.send('alice', 'after the storm')
    await alice.message('after the storm')
    await alice.client.send('bob', 'still here')
    await bob.message('still here')
    const carol = makeClient('carol', address)
    await carol.client.start()
    await carol.client.send('alice', 'newcomer')
    await alice.message('newcomer')

    for (const client of [...clients, carol]) await client.client.stop()
    await server.close()
  })
})
