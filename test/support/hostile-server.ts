// A rendezvous server that lies: it speaks the real protocol but lets a test rewrite every introduction it sends.
import * as dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import type { Endpoint } from '../../core/types'
import { decodeFrame, decodeJson, encodeJson, FrameKind } from '../../core/wire'
import { parseClientMessage, type PeerIntro, type ServerMessage } from '../../protocol'

/** Rewrites the introduction of `peer` that is about to be sent to `recipient`; undefined withholds it. */
export type IntroTamper = (recipient: string, peer: PeerIntro) => PeerIntro | undefined

export class HostileServer {
  private readonly socket = dgram.createSocket('udp4')
  private readonly registered = new Map<string, PeerIntro>()

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
    const frame = decodeFrame(bytes)
    const json = frame && decodeJson(frame.body)
    const message = json && parseClientMessage(json)
    if (!message) return
    const me = [...this.registered.values()].find((r) => r.public.address === from.address && r.public.port === from.port)
    switch (message.t) {
      case 'hello':
        return this.send(from, { t: 'cookie', rid: message.rid, cookie: 'c' })
      case 'register':
        this.registered.set(message.name, { name: message.name, key: message.key, public: from, local: message.local })
        return this.send(from, { t: 'challenge', rid: message.rid, nonce: '0'.repeat(32) })
      case 'prove': // a liar need not check the proof
        return this.send(from, { t: 'registered', rid: message.rid, name: me?.name ?? '?', public: from, ttlMs: 60_000 })
      case 'ping':
        return this.send(from, { t: 'pong', rid: message.rid, public: from })
      case 'list':
        return this.send(from, { t: 'peers', rid: message.rid, peers: [...this.registered.keys()].filter((n) => n !== me?.name), more: false })
      case 'connect': {
        const peer = this.registered.get(message.to)
        if (!me || !peer) return this.send(from, { t: 'error', rid: message.rid, code: 'unknown_peer', message: 'no' })
        const token = randomBytes(16).toString('hex')
        const toPeer = this.tamper(peer.name, me)
        const toAsker = this.tamper(me.name, peer)
        if (toPeer) this.send(peer.public, { t: 'intro', peer: toPeer, token })
        if (toAsker) this.send(from, { t: 'intro', rid: message.rid, peer: toAsker, token })
        return
      }
      default: // bye, mapping, relay: this liar has no use for them
        return
    }
  }

  private send(to: Endpoint, message: ServerMessage): void {
    this.socket.send(encodeJson(FrameKind.Server, message), to.port, to.address)
  }
}

/** A socket that pretends to be a peer on a path: it answers punches (it learns the token from a hostile server) and records all it receives. */
export class Impostor {
  readonly received: Buffer[] = []
  private readonly socket = dgram.createSocket('udp4')

  constructor(private readonly pretendName: string) {
    this.socket.on('message', (bytes, rinfo) => {
      this.received.push(bytes)
      const frame = decodeFrame(bytes)
      const json = frame?.kind === FrameKind.Probe ? decodeJson(frame.body) : undefined
      if (json?.t === 'punch') {
        const ack = encodeJson(FrameKind.Probe, { t: 'punch-ack', from: this.pretendName, to: json.from as string, token: json.token as string })
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
