// Finds peers through the rendezvous server and opens direct UDP paths by simultaneous hole punching; birthday-paradox
// probing when one side's NAT is symmetric; the server's relay when no direct path opens, upgraded when one does.
// This file only wires: hooks, sockets and the one timer. The server side is rendezvous.ts; the paths, paths.ts.
import {
  boolean,
  definePlugin,
  FrameKind,
  number,
  object,
  optional,
  validate,
  Veto,
  type CoreServices,
  type Endpoint,
  type PathKind,
  type Transport,
} from '../../core'
import {
  decodeJson,
  encodeJson,
  formatEndpoint,
  isEndpoint,
  relayRoom,
  sameEndpoint,
  type PeerIntro,
} from '../../protocol'
import { AuxSocket, MAX_AUX_SOCKETS, openAuxSockets } from './birthday'
import { PathMachine, type PathEvent } from './paths'
import { makeProbe, parseProbe, type ProbeType } from '../../protocol'
import { inOwnSubnet, MAX_LOCAL_CANDIDATES } from './send-policy'
import { RendezvousClient } from './rendezvous'

export { punchSchedule } from './paths'

/** What hole-punch tells others and tests: how large its tables are, and which server it uses. */
export interface HolePunchService {
  stats(): { names: number; scheduled: number; birthdaySockets: number }
  /** Whether a state for `name` is held. */
  holds(name: string): boolean
}

declare module '../../core/index' {
  interface ServiceMap {
    'hole-punch': HolePunchService
  }
}

const optionsSchema = object({
  /** How often the server registration and every open path are refreshed; under the common 30 s NAT timeout. */
  keepaliveMs: optional(number({ min: 200, max: 120_000, integer: true }), 15_000),
  /** How long to punch before giving up on a direct path. */
  punchTimeoutMs: optional(number({ min: 500, max: 60_000, integer: true }), 10_000),
  /** How long one request to the server waits for its answer before it is sent again. */
  requestTimeoutMs: optional(number({ min: 50, max: 10_000, integer: true }), 500),
  /** Start a server in-process when the configured one is on this machine and none answers (needs the embedded-server plugin). */
  embeddedServer: optional(boolean(), true),
  /** Use the server's relay (when it offers one) for a peer no direct path reaches. */
  relay: optional(boolean(), true),
  /** How long punching may go without a direct path before the relay is asked for (at once when either NAT is symmetric). */
  relayAfterMs: optional(number({ min: 0, max: 60_000, integer: true }), 3_000),
  /** While relayed, how often a new direct attempt is made. */
  upgradeMs: optional(number({ min: 1_000, max: 3_600_000, integer: true }), 30_000),
  /** Sockets the symmetric side opens for birthday punching (0 turns birthday punching off). */
  birthdaySockets: optional(number({ min: 0, max: 512, integer: true }), 256),
  /** Random-port probes per second from the other side; the total is bounded by `punchTimeoutMs`. */
  birthdayRate: optional(number({ min: 10, max: 1_000, integer: true }), 250),
})

export type HolePunchOptions = NonNullable<ReturnType<typeof optionsSchema>>
type Deps = Pick<
  CoreServices,
  'hooks' | 'transports' | 'logger' | 'settings' | 'me' | 'peers' | 'services' | 'profile' | 'commands'
>

export default definePlugin<HolePunchOptions, Deps>({
  name: 'hole-punch',
  needs: ['transport'],
  provides: ['path', 'rendezvous'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, transports, logger, settings, me, peers, services, profile, commands }, options) {
    const log = logger.child('hole-punch')
    const connecting = new Map<string, Promise<PathKind | undefined>>()
    let transport: Transport
    let paths: PathMachine<Transport> | undefined
    let stopped = false
    /** The one timer: the path machine's next deadline. */
    let timer: NodeJS.Timeout | undefined
    let timerAt = Infinity
    let auxOpen = 0
    /** Probes sent, counted across every peer: each probe's sequence number (see probe.ts). */
    let probeSeq = 0
    /** The one punch each birthday attempt sends to every random port (see PathEffects.sendPortProbes), by peer. */
    const portPunches = new Map<string, { attempt: number; bytes: Buffer }>()

    const probeBytes = (name: string, token: string, t: ProbeType) =>
      encodeJson(FrameKind.Probe, { ...makeProbe(token, t, me.name, name, probeSeq++) })

    function arm(at: number) {
      if (stopped || at >= timerAt) return
      clearTimeout(timer)
      timerAt = at
      timer = setTimeout(fire, Math.max(0, at - Date.now()))
    }

    function fire() {
      timer = undefined
      timerAt = Infinity
      if (!paths || stopped) return
      paths.tick()
      const next = paths.nextDeadline()
      if (next !== undefined) arm(next)
    }

    function closeAux(sockets: Transport[]) {
      for (const socket of sockets) {
        if (!(socket instanceof AuxSocket) || socket.isClosed) continue
        void socket.close()
        auxOpen--
      }
    }

    function pathChanged(event: PathEvent<Transport>) {
      if (event.t === 'direct') {
        peers.update(event.name, { path: 'direct', online: true })
        if (event.first) hooks.peerConnected.call(event.name, 'direct')
      } else if (event.t === 'relay') {
        peers.update(event.name, { path: 'relay', online: true })
        hooks.peerConnected.call(event.name, 'relay')
      } else {
        portPunches.delete(event.name)
        peers.update(event.name, { path: undefined, online: event.online })
        hooks.peerLost.call(event.name, event.reason)
      }
    }

    /** Symmetric side: many sockets, each with its own NAT mapping towards the peer's public endpoint. */
    async function openBirthdaySockets(name: string, attempt: number) {
      const count = Math.min(options.birthdaySockets, MAX_AUX_SOCKETS - auxOpen)
      if (count <= 0) return log.warn(`no birthday sockets for ${name}: ${auxOpen} already open`)
      auxOpen += count
      const sockets = await openAuxSockets(count, (bytes, from, via) =>
        transports.receive({ bytes, from, transport: via }),
      )
      auxOpen -= count - sockets.length
      if (!paths?.auxOpened(name, attempt, sockets)) closeAux(sockets)
    }

    function introduced(intro: PeerIntro, token: string) {
      if (!paths) return
      // Local candidates only inside our own subnets (elsewhere they cannot be the peer's LAN), and a few: a peer that
      // lists a stranger's addresses as its own gets nothing sent there.
      const local = intro.local.filter((e) => inOwnSubnet(e.address)).slice(0, MAX_LOCAL_CANDIDATES)
      const candidates = dedupe([intro.public, ...local].filter((e) => !sameEndpoint(e, transport.local())))
      paths.introduce({
        name: intro.name,
        token,
        public: intro.public,
        candidates,
        nat: intro.nat ?? 'unknown',
        instance: intro.instance,
      })
      const info = peers.update(intro.name, { publicKey: intro.key, online: true, instance: intro.instance })
      hooks.peerDiscovered.call(info)
    }

    const rendezvous = new RendezvousClient({
      options,
      me,
      server: () => settings.server,
      log,
      profile,
      embedded: () => (options.embeddedServer ? services.get('embedded-server') : undefined),
      events: {
        state: (state) => hooks.server.call(state),
        problem: (problem) => hooks.problem.call(problem),
        registered: (online, relays, renewed) => paths?.setRegistered(online, relays, renewed),
        nat: (nat) => paths?.setNat(nat),
        intro: introduced,
        left: (name) => paths?.left(name),
        relay: (name, ready) => paths?.peerAskedRelay(name, ready),
        relayed: (name, frame, from) => {
          // Re-injected as if it arrived on the socket: rsa opens it as any HANDSHAKE or DATA frame, and checks who sent it.
          if (paths?.acceptsRelayed(name)) queueMicrotask(() => transports.receive({ bytes: frame, from, transport }))
        },
        tick: () => paths?.keepalive(),
      },
    })

    hooks.receive.tap('hole-punch', (datagram) => {
      const { frame } = datagram
      if (!frame) return undefined
      if (frame.kind === FrameKind.Server || frame.kind === FrameKind.Channel)
        return rendezvous.receive(frame, datagram.from)
      if (frame.kind === FrameKind.Probe) {
        const json = decodeJson(frame.body)
        const probe = json && parseProbe(json)
        return probe && paths?.probe(probe, datagram.from, datagram.transport) ? true : undefined
      }
      paths?.heard(datagram.from, datagram.transport)
      return undefined
    })

    hooks.start.tapPromise('hole-punch', async () => {
      transport = transports.primary()
      paths = new PathMachine<Transport>(me.name, transport, options, {
        sendProbe: (via, to, name, token, t) => {
          void via
            .send(probeBytes(name, token, t), to)
            .catch((error) => log.debug(`probe to ${formatEndpoint(to)} failed: ${error.message}`))
        },
        sendPortProbes: (name, attempt, token, address, ports) => {
          let punch = portPunches.get(name)
          if (punch?.attempt !== attempt)
            portPunches.set(name, (punch = { attempt, bytes: probeBytes(name, token, 'punch') }))
          for (const port of ports) void transport.send(punch.bytes, { address, port }).catch(() => undefined)
        },
        reintroduce: (name) => void rendezvous.reintroduce(name),
        askIntro: (name) => void rendezvous.askIntro(name),
        askRelay: (name) => void rendezvous.askRelay(name).then((answer) => paths?.relayAnswer(name, answer)),
        openAux: (name, attempt) => void openBirthdaySockets(name, attempt),
        closeAux,
        path: pathChanged,
        deadline: arm,
        log: (level, message, fields) => log[level](message, fields),
      })
      await rendezvous.start(transport)
    })

    services.provide(
      'hole-punch',
      {
        stats: () => ({ names: paths?.size ?? 0, scheduled: paths?.scheduled ?? 0, birthdaySockets: auxOpen }),
        holds: (name) => paths?.has(name) ?? false,
      },
      'hole-punch',
    )

    // The directory keeps at most 1,024 peers: a name it forgets takes its punching state and scheduled steps along.
    peers.onForget((name) => {
      paths?.forget(name)
      portPunches.delete(name)
    })

    hooks.connect.tapPromise('hole-punch', async (peer) => {
      const known = paths?.reach(peer)
      if (known) return known
      let attempt = connecting.get(peer)
      if (!attempt) {
        attempt = (async () => {
          const reply = await rendezvous.connect(peer)
          if (reply?.t === 'error') throw new Veto(reply.message)
          if (reply?.t !== 'intro') throw new Veto(`the server did not answer the request to reach ${peer}`)
          return paths?.waitForPath(peer)
        })().finally(() => connecting.delete(peer))
        connecting.set(peer, attempt)
      }
      return attempt
    })

    hooks.send.tapPromise('hole-punch', async (packet) => {
      const route = paths?.route(packet.peer)
      if (route?.t === 'direct') {
        await route.via.send(packet.bytes, route.endpoint)
        return true
      }
      if (route?.t !== 'relay') return undefined
      if (packet.bytes.length > relayRoom(packet.peer))
        throw new Veto(`a frame of ${packet.bytes.length} bytes does not fit the relay to ${packet.peer}`)
      return (await rendezvous.relay(packet.peer, packet.bytes)) || undefined
    })

    // The server keeps a name for its key while its owner is away (90 days by default): a user moving to a new key
    // (a new device, a new profile) gives the name up first, with the old one.
    commands.register({
      name: 'release',
      usage: '/release',
      description: 'give your name up at the server, so that another key (a new device) can register it',
      async run(_args, out) {
        const failed = await rendezvous.release()
        if (failed) return out.error(failed)
        out.info(`the server released ${me.name}: another key can register it once you quit`)
      },
    })

    commands.register({
      name: 'who',
      usage: '/who [TEXT]',
      description: 'who is online at the server, or whose name contains TEXT',
      async run(args, out) {
        const found = await rendezvous.list(args || undefined)
        if (!found) return out.error('the server did not answer')
        if (found.names.length === 0)
          return out.info(args ? `nobody online matches "${args}"` : 'nobody else is online')
        out.info(`online${args ? ` matching "${args}"` : ''}: ${found.names.join(', ')}${found.more ? ', …' : ''}`)
      },
    })

    hooks.listPeers.tapPromise('hole-punch', async (known) => {
      const reply = await rendezvous.list()
      if (!reply) return known
      const online = new Set(reply.names)
      const merged = known.map((p) => ({ ...p, online: online.has(p.name) }))
      for (const name of online) if (!merged.some((p) => p.name === name)) merged.push({ name, online: true })
      return merged.sort((a, b) => a.name.localeCompare(b.name))
    })

    hooks.stop.tapPromise('hole-punch', async () => {
      const ending = paths?.stop()
      stopped = true
      clearTimeout(timer)
      for (const bye of ending?.byes ?? []) {
        await bye.via
          .send(probeBytes(bye.name, bye.token, 'bye'), bye.endpoint)
          .catch((error) => log.debug(`bye to ${formatEndpoint(bye.endpoint)} failed: ${error.message}`))
      }
      closeAux(ending?.sockets ?? [])
      await rendezvous.stop()
    })
  },
})

function dedupe(endpoints: Endpoint[]): Endpoint[] {
  return endpoints.filter((e, i) => isEndpoint(e) && endpoints.findIndex((o) => sameEndpoint(o, e)) === i)
}
