// A mocha suite that any transport plugin runs against itself, as js-libp2p's interface-compliance-tests do: two
// instances of the plugin, started with the hooks and services a client gives them, must pass datagrams both ways.
import * as assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { CommandRegistry } from '../core/commands'
import { createHooks, type Hooks } from '../core/hooks'
import { createLogger } from '../core/log'
import { PeerDirectory } from '../core/peers'
import type { CoreServices, PluginDefinition } from '../core/plugin'
import { Profile } from '../core/profile'
import { ServiceRegistry } from '../core/services'
import { TransportRegistry } from '../core/transports'
import type { Datagram, Endpoint, Transport } from '../core/types'
import { MAX_DATAGRAM_BYTES } from '../core/wire'
import { isStandardSchema, validateStandard } from '../core/standard-schema'

/** What `setup` returns: the plugin under test and the options each of its two instances gets. */
export interface TransportUnderTest<Options = unknown> {
  // The plugin's own dependency type is its business: the suite hands it the services a client would.
  plugin: PluginDefinition<Options, never>
  /** Raw options, as in a config; the plugin's own check turns them into its options. */
  options?: unknown
}

export interface TransportComplianceOptions {
  /** Called before each test; returns the plugin and its options. */
  setup(): Promise<TransportUnderTest> | TransportUnderTest
  /** Called after each test, after both instances have stopped. */
  teardown?(): Promise<void> | void
}

/** One started instance of the transport plugin, with every datagram it handed to the core. */
interface Instance {
  hooks: Hooks
  transport: Transport
  received: Datagram[]
  /** Resolves with the first datagram received from now on whose bytes equal `bytes`. */
  receive(bytes: Buffer, timeoutMs?: number): Promise<Datagram>
  stop(): Promise<void>
}

const silent = createLogger('silent')

async function start(under: TransportUnderTest, dir: string): Promise<Instance> {
  const hooks = createHooks()
  const received: Datagram[] = []
  const listeners = new Set<(datagram: Datagram) => void>()
  const transports = new TransportRegistry(hooks, (datagram) => {
    received.push(datagram)
    for (const listener of listeners) listener(datagram)
  })
  const services: CoreServices = {
    hooks,
    logger: silent,
    settings: { name: 'compliance', server: '127.0.0.1:9' },
    me: { name: 'compliance', publicKey: '', fingerprint: '', sign: () => Buffer.alloc(0) },
    profile: new Profile(fs.mkdtempSync(path.join(dir, 'profile-'))),
    peers: new PeerDirectory(),
    transports,
    commands: new CommandRegistry(),
    // A transport has no business with the chat or the pipeline: using them fails the suite, saying so.
    chat: unavailable('chat'),
    pipeline: unavailable('pipeline'),
    services: new ServiceRegistry(),
  }
  const options = checkOptions(under)
  ;(under.plugin.create as (deps: CoreServices, options: unknown) => void)(services, options)
  await hooks.init.promise()
  await hooks.start.promise()
  const transport = transports.all()[0]
  assert.ok(transport, `plugin "${under.plugin.name}" registered no transport at start (transports.register)`)
  return {
    hooks,
    transport,
    received,
    receive(bytes, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener)
          reject(
            new Error(
              `no datagram of ${bytes.length} bytes arrived within ${timeoutMs} ms (${received.length} received in all)`,
            ),
          )
        }, timeoutMs)
        const listener = (datagram: Datagram) => {
          if (!Buffer.from(datagram.bytes).equals(bytes)) return
          clearTimeout(timer)
          listeners.delete(listener)
          resolve(datagram)
        }
        listeners.add(listener)
      })
    },
    stop: () => hooks.stop.promise(),
  }
}

function unavailable<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get: () => {
      throw new Error(`a transport plugin used the "${name}" service, which the compliance suite does not give it`)
    },
  })
}

function checkOptions({ plugin, options }: TransportUnderTest): unknown {
  const raw = options ?? {}
  const check = plugin.options
  if (check === undefined) return raw
  const result = isStandardSchema(check) ? validateStandard(check, raw) : check(raw)
  if ('problems' in result)
    throw new Error(`plugin "${plugin.name}" refused its options: ${result.problems.join('; ')}`)
  return result.value
}

/** The endpoint a datagram from `transport` should show: its own, with a wildcard address seen as loopback. */
function seenFrom(local: Endpoint): Endpoint {
  return { address: local.address === '0.0.0.0' ? '127.0.0.1' : local.address, port: local.port }
}

/**
 * Declares a mocha suite named after `name` that checks a transport plugin: it registers a transport at start that
 * reports its endpoint, delivers datagrams both ways with their sender's endpoint (up to `MAX_DATAGRAM_BYTES`), hands
 * any bytes up without failing (the core judges frames), and closes on `stop`. Call it at the top level of a test file.
 */
export function describeTransportCompliance(name: string, options: TransportComplianceOptions): void {
  describe(`transport compliance: ${name}`, function () {
    let dir: string
    let a: Instance
    let b: Instance

    beforeEach(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-compliance-'))
      const under = await options.setup()
      a = await start(under, dir)
      b = await start(under, dir)
    })

    afterEach(async () => {
      await a?.stop()
      await b?.stop()
      await options.teardown?.()
      fs.rmSync(dir, { recursive: true, force: true })
    })

    it('registers a transport at start that reports the endpoint it is bound to', () => {
      for (const { transport } of [a, b]) {
        const local = transport.local()
        assert.equal(typeof local.address, 'string')
        assert.ok(
          Number.isInteger(local.port) && local.port > 0 && local.port < 65536,
          `port ${local.port} is not a bound port`,
        )
        assert.equal(typeof transport.name, 'string')
      }
      assert.notDeepEqual(a.transport.local(), b.transport.local(), 'two instances report the same endpoint')
    })

    it("delivers datagrams both ways, each with its sender's endpoint", async () => {
      const toB = Buffer.from('from a to b')
      const toA = Buffer.from('from b to a')
      const atB = b.receive(toB)
      const atA = a.receive(toA)
      await a.transport.send(toB, b.transport.local())
      await b.transport.send(toA, a.transport.local())
      const [fromA, fromB] = await Promise.all([atB, atA])
      assert.deepEqual(fromA.from, seenFrom(a.transport.local()))
      assert.deepEqual(fromB.from, seenFrom(b.transport.local()))
      assert.equal(fromA.transport, b.transport, 'a datagram names the transport that received it')
    })

    it('carries every size up to MAX_DATAGRAM_BYTES unchanged', async () => {
      for (const size of [1, 600, MAX_DATAGRAM_BYTES]) {
        const bytes = Buffer.alloc(size, size % 251)
        bytes[0] = 0xff
        const arrived = b.receive(bytes)
        await a.transport.send(bytes, b.transport.local())
        assert.equal((await arrived).bytes.length, size)
      }
    })

    it('hands up bytes that are not a udsu frame, and goes on working', async () => {
      const garbage = [
        Buffer.alloc(0),
        Buffer.from([0]),
        Buffer.from('\u0000not a frame\uffff'),
        Buffer.alloc(300, 0xff),
      ]
      for (const bytes of garbage) await a.transport.send(bytes, b.transport.local())
      const after = Buffer.from('still here')
      const arrived = b.receive(after)
      await a.transport.send(after, b.transport.local())
      await arrived
      // Whatever it made of the garbage, it never claims more than was sent, and it is still delivering.
      assert.ok(b.received.length <= garbage.length + 1)
    })

    it('closes on stop: sending through it afterwards fails instead of going out', async () => {
      await a.stop()
      await assert.rejects(() => a.transport.send(Buffer.from('after stop'), b.transport.local()))
    })
  })
}
