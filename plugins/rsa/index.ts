// End-to-end encryption: an RSA identity per user, a signed forward-secret handshake per peer, AES-GCM per message.
import { createPrivateKey, sign } from 'node:crypto'
import {
  definePlugin,
  encodeFrame,
  frameHeader,
  FrameKind,
  number,
  object,
  oneOf,
  optional,
  validate,
  Veto,
  type CoreServices,
} from '../../core'
import {
  HandshakeRejected,
  initBudget,
  OpenFailed,
  peekHandshake,
  peekSessionId,
  PSS,
  requestCookies,
  SecureChannel,
} from './channel'
import {
  checkPublicKey,
  DEFAULT_RSA_BITS,
  fingerprintOf,
  IDENTITY_RSA_BITS,
  loadOrCreateIdentity,
  safetyNumber,
  type RsaIdentity,
} from './identity'

const optionsSchema = object({
  /** Size of a newly created identity key: only the sizes whose public key fits the registration datagram. */
  bits: optional(oneOf(IDENTITY_RSA_BITS), DEFAULT_RSA_BITS),
  /** How long sending waits for a secure session before the message fails. */
  handshakeTimeoutMs: optional(number({ min: 500, max: 60_000, integer: true }), 10_000),
  /** How often an unanswered handshake message is sent again. */
  retransmitMs: optional(number({ min: 50, max: 5_000, integer: true }), 300),
  /** New INITs (one RSA signature each, about 3 ms) a second across all peers, and at once: a bound on what REQUESTs,
   *  which anyone can send under any introduced name, can cost. */
  initsPerSecond: optional(number({ min: 1, max: 1000, integer: true }), 10),
  initBurst: optional(number({ min: 20, max: 1000, integer: true }), 20),
})

export type RsaOptions = NonNullable<ReturnType<typeof optionsSchema>>
type Deps = Pick<CoreServices, 'hooks' | 'me' | 'profile' | 'peers' | 'logger' | 'commands'>

/** The peers' key fingerprints we have met, as kept in the profile (trust on first use). */
const KNOWN_PEERS_FILE = 'known-peers.json'
const DATA_AAD = frameHeader(FrameKind.Data)

export interface RsaStats {
  handshakesRejected: number
  openFailed: number
}

export default definePlugin<RsaOptions, Deps>({
  name: 'rsa',
  provides: ['encryption', 'identity'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, me, profile, peers, logger, commands }, options) {
    const log = logger.child('rsa')
    const channels = new Map<string, SecureChannel>()
    const sessionOwner = new Map<string, string>()
    const waiting = new Map<string, Array<() => void>>()
    /** Peers introduced again since their session was agreed: peer → the session id that must be replaced. */
    const renewing = new Map<string, string>()
    /** The peer's process each session was agreed with (PeerInfo.instance). */
    const sessionInstances = new Map<string, string | undefined>()
    /** Each name's key as last introduced (by the server, so not yet trusted): name → canonical PEM and fingerprint. */
    const introduced = new Map<string, { publicKeyPem: string; fingerprint: string }>()
    /** Peers whose introduced key differs from the pinned one: name → the fingerprint the warning named (what /trust pins). */
    const changedKeys = new Map<string, string>()
    const stats: RsaStats = { handshakesRejected: 0, openFailed: 0 }
    const inits = initBudget(options.initsPerSecond, options.initBurst)
    /** One secret for the cookies of all our channels, made at start and never stored: a restart only costs a round trip. */
    const cookies = requestCookies()
    let known: Record<string, string> = {}
    let identity: RsaIdentity

    hooks.init.tapPromise('rsa', async () => {
      identity = await loadOrCreateIdentity(profile.dir, {
        bits: options.bits,
        onGenerate: (bits) => {
          // Seconds of silence would look like a hang: say what is happening, in the log and on a terminal frontend.
          const message = `generating a ${bits}-bit key…`
          log.info(message)
          hooks.notice.call({ source: 'rsa', message })
        },
      })
      me.publicKey = identity.publicKeyPem
      me.fingerprint = identity.fingerprint
      const privateKey = createPrivateKey(identity.privateKeyPem)
      me.sign = (data) => sign('sha256', data, { key: privateKey, ...PSS })
      known = profile.readJson<Record<string, string>>(KNOWN_PEERS_FILE) ?? {}
    })

    hooks.peerDiscovered.tap('rsa', ({ name, publicKey, instance }) => {
      if (!publicKey) return
      const key = checkPublicKey(publicKey)
      introduced.set(name, key)
      // Nothing is pinned here: an introduction is the server's word. A key is pinned once a handshake with it succeeds.
      const pinned = known[name]
      if (pinned === undefined || pinned === key.fingerprint) {
        // First contact, or the key we trust came back (the other one was an impostor's): nothing to accept any more.
        changedKeys.delete(name)
      } else if (changedKeys.get(name) !== key.fingerprint) {
        // Said once per new key, however often it is introduced.
        changedKeys.set(name, key.fingerprint)
        hooks.problem.call({
          source: 'rsa',
          peer: name,
          code: 'key-changed',
          message: `the key of ${name} has changed (was ${pinned}, now ${key.fingerprint}). Messages with ${name} are blocked until you accept the new key with /trust ${name}`,
        })
      }
      // Another process of the peer (or a server that does not say which) means it restarted and lost our session:
      // agree a fresh one before sealing again. The same process introduced again keeps its session.
      const channel = channels.get(name)
      if (channel?.established && (instance === undefined || instance !== sessionInstances.get(name)))
        renewing.set(name, channel.sessionIds()[0])
    })

    // A name the directory forgot (introduced, then silent) takes what we keep for it along, unless a session exists.
    peers.onForget((name) => {
      introduced.delete(name)
      changedKeys.delete(name)
      if (!channels.get(name)?.established) forget(name)
    })

    /** The introduced key of a peer if we may use it: it is the pinned one, or nothing is pinned yet (first contact). */
    function usableKey(peer: string): string | undefined {
      const key = introduced.get(peer)
      if (!key) return undefined
      const pinned = known[peer]
      return pinned === undefined || pinned === key.fingerprint ? key.publicKeyPem : undefined
    }

    function pin(peer: string, fingerprint: string) {
      known[peer] = fingerprint
      profile.writeJson(KNOWN_PEERS_FILE, known)
    }

    function forget(peer: string) {
      const channel = channels.get(peer)
      if (!channel) return
      for (const id of channel.sessionIds()) sessionOwner.delete(id)
      channels.delete(peer)
      renewing.delete(peer)
      sessionInstances.delete(peer)
    }

    /** The channel with a peer whose key is known and trusted; undefined otherwise. */
    function channelWith(peer: string): SecureChannel | undefined {
      const publicKeyPem = usableKey(peer)
      const existing = channels.get(peer)
      // An established channel is with the pinned key: pinned when it was established, and /trust drops the channel.
      if (existing && (existing.established || existing.peerPublicKeyPem === publicKeyPem)) return existing
      // A first contact introduced anew with another key before its handshake finished: start over with that key.
      if (existing) forget(peer)
      if (!publicKeyPem) return undefined
      const channel = new SecureChannel({
        me: { name: me.name, identity },
        peer: { name: peer, publicKeyPem },
        initBudget: inits,
        cookies,
      })
      channels.set(peer, channel)
      return channel
    }

    async function sendHandshake(peer: string, bodies: Buffer[]) {
      for (const body of bodies) {
        await hooks.send
          .promise({ peer, bytes: encodeFrame(FrameKind.Handshake, body), sealed: true })
          .catch(() => undefined)
      }
    }

    function established(peer: string, channel: SecureChannel) {
      log.debug(`secure session with ${peer}`, { session: channel.sessionIds()[0] })
      // Trust on first use, pinned only now that the peer proved it holds the key.
      if (known[peer] === undefined) pin(peer, fingerprintOf(channel.peerPublicKeyPem))
      sessionInstances.set(peer, peers.get(peer)?.instance)
      for (const id of channel.sessionIds()) sessionOwner.set(id, peer)
      if (renewing.get(peer) !== channel.sessionIds()[0]) renewing.delete(peer)
      for (const wake of waiting.get(peer)?.splice(0) ?? []) wake()
    }

    /** Runs the handshake until a session exists, resending what is unanswered; throws Veto when it cannot. */
    async function secureChannel(peer: string): Promise<SecureChannel> {
      if (changedKeys.has(peer)) throw new Veto(`the key of ${peer} has changed; accept it with /trust ${peer} first`)
      const channel = channelWith(peer)
      if (!channel) throw new Veto(`no key known for ${peer}`)
      const ready = () => channel.established && !channel.needsRekey() && !renewing.has(peer)
      const deadline = Date.now() + options.handshakeTimeoutMs
      while (!ready()) {
        if (channel.established && channel.needsRekey() && !renewing.has(peer)) {
          // Keep sending on the old session while the new one is negotiated.
          void sendHandshake(peer, channel.begin())
          return channel
        }
        if (Date.now() > deadline || channels.get(peer) !== channel) {
          throw new Veto(`no secure session with ${peer}: the handshake was not answered`)
        }
        await sendHandshake(peer, channel.begin())
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.retransmitMs)
          const list = waiting.get(peer) ?? []
          list.push(() => (clearTimeout(timer), resolve()))
          waiting.set(peer, list)
        })
      }
      return channel
    }

    hooks.encode.tapPromise('rsa', async (packet) => {
      const channel = await secureChannel(packet.peer)
      return { ...packet, bytes: channel.seal(packet.bytes, DATA_AAD), sealed: true }
    })

    hooks.receive.tap('rsa', ({ frame, from: source, transport }) => {
      if (frame?.kind !== FrameKind.Handshake) return undefined
      try {
        const { from, to } = peekHandshake(frame.body)
        if (to !== me.name) throw new HandshakeRejected(`handshake for ${to}, not us`)
        const channel = channelWith(from)
        if (!channel) throw new HandshakeRejected(`handshake from ${from}, whose key we do not know or trust`)
        const wasEstablished = channel.sessionIds().join()
        // Relayed frames come from the server's endpoint: a cookie then proves the way through the relay.
        const replies = channel.handleHandshake(frame.body, `${transport.name} ${source.address}:${source.port}`)
        void sendHandshake(from, replies)
        if (channel.established && channel.sessionIds().join() !== wasEstablished) established(from, channel)
      } catch (error) {
        stats.handshakesRejected++
        log.debug(`handshake rejected: ${(error as Error).message}`)
      }
      return true
    })

    hooks.decrypt.tapPromise('rsa', async (sealed) => {
      try {
        const peer = sessionOwner.get(peekSessionId(sealed.bytes))
        const channel = peer === undefined ? undefined : channels.get(peer)
        if (!peer || !channel) throw new OpenFailed('unknown session')
        return {
          peer,
          bytes: channel.open(sealed.bytes, DATA_AAD),
          sealed: false,
          from: sealed.from,
          transport: sealed.transport,
        }
      } catch (error) {
        stats.openFailed++
        log.debug(`could not open a DATA frame: ${(error as Error).message}`)
        return undefined
      }
    })

    hooks.safetyNumber.tap('rsa', (peer) => {
      const publicKeyPem = peers.get(peer)?.publicKey
      return publicKeyPem && identity
        ? safetyNumber({ name: me.name, publicKeyPem: identity.publicKeyPem }, { name: peer, publicKeyPem })
        : undefined
    })

    commands.register({
      name: 'fingerprint',
      usage: '/fingerprint [NAME]',
      description: 'your key fingerprint, or the safety number to compare with NAME',
      run(args, out) {
        const peer = args || out.current
        if (!peer) return out.info(`your fingerprint: ${me.fingerprint}`)
        const number = hooks.safetyNumber.call(peer)
        out.info(number ? `safety number with ${peer}: ${number}` : `no key known for ${peer} yet`)
      },
    })
    /** The shortest fingerprint prefix /trust takes: 64 bits, beyond any key made to match a prefix. */
    const MIN_TRUST_HEX = 16
    commands.register({
      name: 'trust',
      usage: '/trust NAME [FINGERPRINT]',
      description: "accept NAME's new key (the one the warning named) after you compared the safety number",
      run(args, out) {
        // The fingerprint may be given as shown (in groups with spaces) or without them.
        const [name = '', ...groups] = args.trim().split(/\s+/)
        const expected = groups.length ? groups.join('').toLowerCase() : undefined
        const fingerprint = changedKeys.get(name)
        if (!fingerprint) {
          const pinned = expected !== undefined ? known[name] : undefined
          return out.error(
            `the key of ${name || '(no name)'} has not changed${pinned ? `: it is the one you already trust (${pinned})` : ''}`,
          )
        }
        // A frontend that showed a key names it, so that the key pinned is the one the user compared, not a newer one.
        if (expected !== undefined && expected.length < MIN_TRUST_HEX) {
          return out.error(
            `name at least ${MIN_TRUST_HEX} hex digits of the fingerprint (the warning shows all of it), not "${expected}"`,
          )
        }
        if (expected !== undefined && !fingerprint.replace(/ /g, '').startsWith(expected)) {
          return out.error(
            `the key of ${name} is now ${fingerprint}, not the one you named; compare the safety number again`,
          )
        }
        pin(name, fingerprint)
        changedKeys.delete(name)
        forget(name)
        out.info(`you now trust the new key of ${name} (${fingerprint})`)
      },
    })
  },
})
