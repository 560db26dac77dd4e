// A rendezvous server that lies: it speaks the real protocol but lets a test rewrite every introduction it sends.
import * as dgram from 'node:dgram'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import type { Endpoint } from '../../core/types'
import { makeProbe } from '../../protocol'
import { decodeFrame, decodeJson, encodeJson, FrameKind } from '../../core/wire'
import {
  ChannelEnd,
  encodeServerKey,
  ephemeralKey,
  parseClientMessage,
  signTranscript,
  type EphemeralKey,
  type PeerIntro,
  type ServerMessage,
  type Transcript,
} from '../../protocol'

/** Rewrites the introduction of `peer` that is about to be sent to `recipient`; undefined withholds it. */
export type IntroTamper = (recipient: string, peer: PeerIntro) => PeerIntro | undefined

/** A liar's view of one client: what it registered and the channel it set up. */
interface Victim {
  intro: PeerIntro
  transcript?: Transcript
  eph?: EphemeralKey
  channel?: ChannelEnd
}

export class HostileServer {
  private readonly socket = dgram.createSocket('udp4')
  private readonly registered = new Map<string, Victim>()
  /** The token of the latest introduction it made: a liar can hand it to an accomplice. */
  lastToken?: string
  /** A liar has a key of its own and signs with it: clients that never met the real server cannot tell. */
  private readonly key = generateKeyPairSync('ed25519').privateKey

  constructor(private readonly tamper: IntroTamper) {
    this.socket.on('message', (bytes, rinfo) => this.handle(bytes, { address: rinfo.address, port: rinfo.port }))
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve))
    return `127.0.0.1:${this.socket.address().port}`
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }

  private handle(bytes: Buffer, from: Endpoint): void {
    const me = [...this.registered.values()].find(
      (r) => r.intro.public.address === from.address && r.intro.public.port === from.port,
    )
    const outer = decodeFrame(bytes)
    // The channel is derived at the challenge, since the proof comes sealed under it.
    const frame = outer?.kind === FrameKind.Channel ? me?.channel?.open(outer.body) : outer
    const json = frame?.kind === FrameKind.Server ? decodeJson(frame.body) : undefined
    const message = json && parseClientMessage(json)
    if (!message) return
    switch (message.t) {
      case 'hello':
        return this.sendClear(from, { t: 'cookie', rid: message.rid, cookie: 'c' })
      case 'register': {
        const eph = ephemeralKey()
        const nonce = '0'.repeat(32)
        const skey = encodeServerKey(this.key)
        const transcript: Transcript = {
          nonce,
          name: message.name,
          clientKey: message.key,
          clientEph: message.eph,
          serverEph: eph.public,
          serverKey: skey,
        }
        this.registered.set(message.name, {
          intro: { name: message.name, key: message.key, public: from, local: [] },
          transcript,
          eph,
          channel: ChannelEnd.derive('server', eph, message.eph, transcript),
        })
        return this.sendClear(from, {
          t: 'challenge',
          rid: message.rid,
          nonce,
          eph: eph.public,
          skey,
          ssig: signTranscript(this.key, transcript),
        })
      }
      case 'prove': {
        // a liar need not check the proof; the LAN endpoints come with it
        if (!me?.channel || outer?.kind !== FrameKind.Channel) return
        me.intro.local = message.local
        return this.send(me, { t: 'registered', rid: message.rid, name: me.intro.name, public: from, ttlMs: 60_000 })
      }
      case 'ping':
        return me && this.send(me, { t: 'pong', rid: message.rid, public: from })
      case 'list':
        return (
          me &&
          this.send(me, {
            t: 'peers',
            rid: message.rid,
            peers: [...this.registered.keys()].filter((n) => n !== me.intro.name),
            more: false,
          })
        )
      case 'connect': {
        const peer = this.registered.get(message.to)
        if (!me) return
        if (!peer) return this.send(me, { t: 'error', rid: message.rid, code: 'unknown_peer', message: 'no' })
        const token = randomBytes(16).toString('hex')
        this.lastToken = token
        const toPeer = this.tamper(peer.intro.name, me.intro)
        const toAsker = this.tamper(me.intro.name, peer.intro)
        if (toPeer) this.send(peer, { t: 'intro', peer: toPeer, token })
        if (toAsker) this.send(me, { t: 'intro', rid: message.rid, peer: toAsker, token })
        return
      }
      default: // bye, mapping, relay: this liar has no use for them
        return
    }
  }

  /** Sends `recipient` an introduction nobody asked for, of any peer the liar invents; false if it is not registered. */
  introduce(recipient: string, peer: PeerIntro, token = randomBytes(16).toString('hex')): boolean {
    const victim = this.registered.get(recipient)
    if (!victim?.channel) return false
    this.send(victim, { t: 'intro', peer, token })
    return true
  }

  private sendClear(to: Endpoint, message: ServerMessage): void {
    this.socket.send(encodeJson(FrameKind.Server, message), to.port, to.address)
  }

  private send(to: Victim, message: ServerMessage): void {
    if (to.channel)
      this.socket.send(
        to.channel.seal(encodeJson(FrameKind.Server, message)),
        to.intro.public.port,
        to.intro.public.address,
      )
  }
}

/** A socket that pretends to be a peer on a path: it answers punches (it has the token from a hostile server) and records all it receives. */
export class Impostor {
  readonly received: Buffer[] = []
  private readonly socket = dgram.createSocket('udp4')
  private seq = 0

  constructor(
    private readonly pretendName: string,
    private readonly token: () => string | undefined,
  ) {
    this.socket.on('message', (bytes, rinfo) => {
      this.received.push(bytes)
      const frame = decodeFrame(bytes)
      const json = frame?.kind === FrameKind.Probe ? decodeJson(frame.body) : undefined
      const token = this.token()
      if (json?.t === 'punch' && token) {
        const ack = encodeJson(FrameKind.Probe, {
          ...makeProbe(token, 'punch-ack', this.pretendName, json.from as string, this.seq++),
        })
        this.socket.send(ack, rinfo.port, rinfo.address)
      }
    })
  }

  async listen(): Promise<Endpoint> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve))
    return { address: '127.0.0.1', port: this.socket.address().port }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}
