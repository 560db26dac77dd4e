// Finds peers through the rendezvous server and opens direct UDP paths to them by simultaneous hole punching.
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import * as os from 'node:os'
import { definePlugin, Veto, type CoreServices } from '../../core/plugin'
import { boolean, number, object, optional, validate } from '../../core/schema'
import type { Endpoint, Transport } from '../../core/types'
import { decodeFrame, decodeJson, encodeJson, formatEndpoint, FrameKind, isEndpoint, parseHostPort, sameEndpoint, type JsonMessage } from '../../core/wire'
import { parseServerMessage, type ClientMessage, type PeerIntro, type ServerMessage } from '../../server/protocol'
import { RendezvousServer } from '../../server'

const optionsSchema = object({
  /** How often the server registration and every open path are refreshed; under the common 30 s NAT timeout. */
  keepaliveMs: optional(number({ min: 200, max: 120_000, integer: true }), 15_000),
  /** How long to punch before giving up on a direct path. */
  punchTimeoutMs: optional(number({ min: 500, max: 60_000, integer: true }), 10_000),
  /** How long one request to the server waits for its answer before it is sent again. */
  requestTimeoutMs: optional(number({ min: 50, max: 10_000, integer: true }), 500),
  /** Start a server in-process when the configured one is on this machine and none answers. */
  embeddedServer: optional(boolean(), true),
})

export type HolePunchOptions = NonNullable<ReturnType<typeof optionsSchema>>
type Deps = Pick<CoreServices, 'hooks' | 'transports' | 'logger' | 'settings' | 'me' | 'peers'>

/** A peer we were introduced to: where it might be, and the path once one works. */
interface PeerState {
  name: string
  token: string
  candidates: Endpoint[]
  path?: Endpoint
  lastHeard: number
  punching?: NodeJS.Timeout
  /** Resolved when a path opens, or with false when punching gives up. */
  waiters: Array<(opened: boolean) => void>
}

/** When punches go out, in ms after the introduction: dense at first (the peer punches at the same time), then paced. */
export function punchSchedule(timeoutMs: number): number[] {
  const times = [0, 20, 50, 100, 150, 250, 400, 600, 800]
  for (let t = 1000; t < timeoutMs; t += 250) times.push(t)
  return times.filter((t) => t < timeoutMs)
}

export default definePlugin<HolePunchOptions, Deps>({
  name: 'hole-punch',
  needs: ['transport'],
  provides: ['path', 'rendezvous'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, transports, logger, settings, me, peers }, options) {
    const log = logger.child('hole-punch')
    const states = new Map<string, PeerState>()
    const pending = new Map<string, (message: ServerMessage) => void>()
    const connecting = new Map<string, Promise<boolean>>()
    let transport: Transport
    let server: Endpoint
    let registered = false
    /** The server state last reported, so frontends hear each change once (and the first state too). */
    let reported: boolean | undefined
    let stopped = false
    let embedded: RendezvousServer | undefined
    let keepalive: NodeJS.Timeout | undefined
    let failedPings = 0

    const sendServer = (message: ClientMessage) =>
      transport.send(encodeJson(FrameKind.Server, message), server).catch((error) => log.debug(`send to server failed: ${error.message}`))

    const sendProbe = (to: Endpoint, message: JsonMessage) =>
      transport.send(encodeJson(FrameKind.Probe, message), to).catch((error) => log.debug(`probe to ${formatEndpoint(to)} failed: ${error.message}`))

    /** Sends a request, resending on timeout; resolves with the reply, or undefined after the last attempt. */
    async function request(message: ClientMessage & { rid: string }, attempts = 3): Promise<ServerMessage | undefined> {
      for (let attempt = 0; attempt < attempts && !stopped; attempt++) {
        const reply = await new Promise<ServerMessage | undefined>((resolve) => {
          const timer = setTimeout(() => {
            pending.delete(message.rid)
            resolve(undefined)
          }, options.requestTimeoutMs * (attempt + 1))
          pending.set(message.rid, (m) => {
            clearTimeout(timer)
            pending.delete(message.rid)
            resolve(m)
          })
          void sendServer(message)
        })
        if (reply) return reply
      }
      return undefined
    }
    const rid = () => randomBytes(8).toString('hex')

    function localEndpoints(): Endpoint[] {
      const port = transport.local().port
      const addresses = Object.values(os.networkInterfaces())
        .flat()
        .filter((i) => i && i.family === 'IPv4' && !i.internal)
        .map((i) => i!.address)
      return [...new Set(addresses)].slice(0, 7).map((address) => ({ address, port }))
    }

    function setOnline(online: boolean, reason?: string, publicEndpoint?: Endpoint) {
      registered = online
      if (online === reported) return
      reported = online
      hooks.server.call({ online, server: settings.server, publicEndpoint, reason })
      log.info(online ? `registered at ${settings.server}` : `server ${settings.server} lost: ${reason}`)
    }

    async function register(): Promise<boolean> {
      const reply = await request({ t: 'register', rid: rid(), name: me.name, key: me.publicKey, local: localEndpoints() }, 2)
      if (reply?.t === 'registered') {
        failedPings = 0
        setOnline(true, undefined, reply.public)
        return true
      }
      if (reply?.t === 'error') {
        // A refusal is final for this attempt and the user must see it (a taken name, a rejected key).
        hooks.problem.call({ source: 'hole-punch', message: `the server refused the registration: ${reply.message}` })
        setOnline(false, reply.message)
        return false
      }
      if (options.embeddedServer && (await isThisMachine(parseHostPort(settings.server).host)) && !embedded) {
        embedded = await startEmbeddedServer()
        if (embedded) return register()
      }
      setOnline(false, 'no answer')
      return false
    }

    async function startEmbeddedServer(): Promise<RendezvousServer | undefined> {
      const { host, port } = parseHostPort(settings.server)
      const candidate = new RendezvousServer({ host: host === 'localhost' ? '127.0.0.1' : host, port, logger: logger.child('server') })
      try {
        await candidate.listen()
        log.info(`no server answered at ${settings.server}: started one in this client`)
        return candidate
      } catch (error) {
        // Another process holds the port (perhaps a server starting right now): keep using it.
        log.debug(`embedded server not started: ${(error as Error).message}`)
        return undefined
      }
    }

    async function tick() {
      if (stopped) return
      if (!registered) await register()
      else {
        const reply = await request({ t: 'ping', rid: rid() }, 1)
        if (reply?.t === 'pong') failedPings = 0
        else if (reply?.t === 'error' && reply.code === 'not_registered') await register() // the server restarted
        else if (++failedPings >= 2) {
          setOnline(false, 'keepalive unanswered')
          await register()
        }
      }
      const now = Date.now()
      for (const state of states.values()) {
        if (!state.path) continue
        if (now - state.lastHeard > options.keepaliveMs * 3.5) lose(state, 'timed out')
        else void sendProbe(state.path, { t: 'keepalive', from: me.name, to: state.name, token: state.token })
      }
    }

    function schedule() {
      if (stopped) return
      // While offline, try the server more often than the steady keepalive.
      const delay = registered ? options.keepaliveMs : Math.min(options.keepaliveMs, 2000)
      keepalive = setTimeout(() => void tick().finally(schedule), delay)
    }

    function lose(state: PeerState, reason: string) {
      if (!state.path) return
      state.path = undefined
      peers.update(state.name, { path: undefined, online: reason !== 'left' })
      hooks.peerLost.call(state.name, reason)
    }

    function handleIntro(intro: PeerIntro, token: string) {
      const existing = states.get(intro.name)
      // A new introduction replaces the old candidates; an open path stays until the new one is proven.
      const candidates = dedupe([intro.public, ...intro.local].filter((e) => !sameEndpoint(e, transport.local())))
      const state: PeerState = existing ?? { name: intro.name, token, candidates, lastHeard: 0, waiters: [] }
      state.token = token
      state.candidates = candidates
      states.set(intro.name, state)
      const info = peers.update(intro.name, { publicKey: intro.key, online: true })
      hooks.peerDiscovered.call(info)
      punch(state)
    }

    function punch(state: PeerState) {
      clearTimeout(state.punching)
      const times = punchSchedule(options.punchTimeoutMs)
      const started = Date.now()
      let step = 0
      const fire = () => {
        if (stopped) return
        if (step >= times.length) return settle(state, Boolean(state.path))
        for (const candidate of state.candidates) {
          void sendProbe(candidate, { t: 'punch', from: me.name, to: state.name, token: state.token })
        }
        step++
        state.punching = step < times.length ? setTimeout(fire, Math.max(0, started + times[step] - Date.now())) : setTimeout(fire, 200)
      }
      fire()
    }

    function settle(state: PeerState, opened: boolean) {
      clearTimeout(state.punching)
      state.punching = undefined
      for (const waiter of state.waiters.splice(0)) waiter(opened)
    }

    function openPath(state: PeerState, endpoint: Endpoint) {
      state.lastHeard = Date.now()
      if (state.path && sameEndpoint(state.path, endpoint)) return
      const first = !state.path
      state.path = endpoint
      peers.update(state.name, { path: 'direct', online: true })
      log.info(`direct path to ${state.name}`, { via: formatEndpoint(endpoint) })
      settle(state, true)
      if (first) hooks.peerConnected.call(state.name, 'direct')
    }

    function handleProbe(message: JsonMessage, from: Endpoint) {
      const state = typeof message.from === 'string' ? states.get(message.from) : undefined
      if (!state || message.to !== me.name || message.token !== state.token) return
      switch (message.t) {
        case 'punch':
          void sendProbe(from, { t: 'punch-ack', from: me.name, to: state.name, token: state.token })
          if (state.path) state.lastHeard = Date.now()
          return
        case 'punch-ack':
          // The first candidate that answers wins; later answers from other candidates only show the path is alive.
          if (!state.path) return openPath(state, from)
          if (sameEndpoint(state.path, from)) state.lastHeard = Date.now()
          return
        case 'keepalive':
          if (state.path && !sameEndpoint(state.path, from)) openPath(state, from) // the peer's NAT gave it a new port
          state.lastHeard = Date.now()
          return
        case 'bye':
          return lose(state, 'left')
      }
    }

    hooks.receive.tap('hole-punch', (datagram) => {
      const frame = decodeFrame(datagram.bytes)
      if (!frame) return undefined
      if (frame.kind === FrameKind.Server) {
        if (!sameEndpoint(datagram.from, server)) return true // only our server speaks this kind to us
        const json = decodeJson(frame.body)
        const message = json && parseServerMessage(json)
        if (!message) return true
        if (message.rid && pending.has(message.rid)) pending.get(message.rid)!(message)
        else if (message.t === 'intro') handleIntro(message.peer, message.token)
        return true
      }
      if (frame.kind === FrameKind.Probe) {
        const json = decodeJson(frame.body)
        if (json) handleProbe(json, datagram.from)
        return true
      }
      // Any other frame from a peer's path proves the path is alive.
      for (const state of states.values()) {
        if (state.path && sameEndpoint(state.path, datagram.from)) state.lastHeard = Date.now()
      }
      return undefined
    })

    hooks.start.tapPromise('hole-punch', async () => {
      transport = transports.primary()
      const { host, port } = parseHostPort(settings.server)
      server = { address: (await lookup(host, { family: 4 })).address, port }
      await register()
      schedule()
    })

    hooks.connect.tapPromise('hole-punch', async (peer) => {
      if (states.get(peer)?.path) return 'direct'
      let attempt = connecting.get(peer)
      if (!attempt) {
        attempt = (async () => {
          const reply = await request({ t: 'connect', rid: rid(), to: peer })
          if (reply?.t === 'error') throw new Veto(reply.message)
          if (reply?.t !== 'intro') throw new Veto(`the server did not answer the request to reach ${peer}`)
          handleIntro(reply.peer, reply.token)
          const state = states.get(peer)!
          return state.path ? true : new Promise<boolean>((resolve) => state.waiters.push(resolve))
        })().finally(() => connecting.delete(peer))
        connecting.set(peer, attempt)
      }
      return (await attempt) ? 'direct' : undefined
    })

    hooks.send.tapPromise('hole-punch', async (packet) => {
      const path = states.get(packet.peer)?.path
      if (!path) return undefined
      await transport.send(packet.bytes, path)
      return true
    })

    hooks.listPeers.tapPromise('hole-punch', async (known) => {
      const reply = await request({ t: 'list', rid: rid() })
      if (reply?.t !== 'peers') return known
      const online = new Set(reply.peers)
      const merged = known.map((p) => ({ ...p, online: online.has(p.name) }))
      for (const name of online) if (!merged.some((p) => p.name === name)) merged.push({ name, online: true })
      return merged.sort((a, b) => a.name.localeCompare(b.name))
    })

    hooks.stop.tapPromise('hole-punch', async () => {
      stopped = true
      clearTimeout(keepalive)
      for (const state of states.values()) {
        clearTimeout(state.punching)
        settle(state, false)
        if (state.path) await sendProbe(state.path, { t: 'bye', from: me.name, to: state.name, token: state.token })
      }
      if (transport && server && registered) await sendServer({ t: 'bye' })
      await embedded?.close()
    })
  },
})

function dedupe(endpoints: Endpoint[]): Endpoint[] {
  return endpoints.filter((e, i) => isEndpoint(e) && endpoints.findIndex((o) => sameEndpoint(o, e)) === i)
}

/** Whether a host names this machine (loopback or one of its interface addresses). */
async function isThisMachine(host: string): Promise<boolean> {
  const address = host === 'localhost' ? '127.0.0.1' : (await lookup(host, { family: 4 }).catch(() => undefined))?.address
  if (!address) return false
  if (address.startsWith('127.') || address === '0.0.0.0') return true
  return Object.values(os.networkInterfaces()).flat().some((i) => i?.address === address)
}
