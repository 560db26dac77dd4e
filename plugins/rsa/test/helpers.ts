// Builds channel pairs on a fake clock and carries handshake messages between them, as the plugin would.
import { SecureChannel, type SecureChannelOptions } from '../channel'
import { fixtureIdentity, type FixtureName } from './fixtures'

export interface Clock {
  now: () => number
  advance(ms: number): void
}

export function fakeClock(start = 1_000_000): Clock {
  let time = start
  return {
    now: () => time,
    advance(ms: number) {
      time += ms
    },
  }
}

type Tuning = Omit<SecureChannelOptions, 'me' | 'peer' | 'now'>

export function channel(me: FixtureName, peer: FixtureName, clock: Clock, tuning: Tuning = {}): SecureChannel {
  return new SecureChannel({
    me: { name: me, identity: fixtureIdentity(me) },
    peer: { name: peer, publicKeyPem: fixtureIdentity(peer).publicKeyPem },
    now: clock.now,
    ...tuning,
  })
}

export interface Pair {
  clock: Clock
  initiator: SecureChannel
  responder: SecureChannel
}

/** Two ends of one conversation, sorted by role. */
export function pair(a: FixtureName, b: FixtureName, tuning: Tuning = {}): Pair {
  const clock = fakeClock()
  const one = channel(a, b, clock, tuning)
  const other = channel(b, a, clock, tuning)
  return one.initiator ? { clock, initiator: one, responder: other } : { clock, initiator: other, responder: one }
}

export interface Delivery {
  from: SecureChannel
  to: SecureChannel
  bytes: Buffer
}

/** Delivers `first` from `starter` and every reply after it, until nobody has anything to say; returns what crossed. */
export function exchange(starter: SecureChannel, other: SecureChannel, first: Buffer[] = starter.begin()): Delivery[] {
  const log: Delivery[] = []
  let queue: Delivery[] = first.map((bytes) => ({ from: starter, to: other, bytes }))
  while (queue.length > 0) {
    const next: Delivery[] = []
    for (const delivery of queue) {
      log.push(delivery)
      for (const reply of delivery.to.handleHandshake(delivery.bytes)) {
        next.push({ from: delivery.to, to: delivery.from, bytes: reply })
      }
    }
    queue = next
  }
  return log
}

/** The responder's REQUEST after the cookie round trip (REQUEST, COOKIE): the one the initiator does RSA work for. */
export function requestWithCookie(responder: SecureChannel, initiator: SecureChannel, source = ''): Buffer {
  const [first] = responder.begin()
  const [cookie] = initiator.handleHandshake(first, source)
  const [request] = responder.handleHandshake(cookie)
  return request
}

/** What a caller can observe of a channel, to check that a rejected message changed nothing. */
export function observable(channel: SecureChannel): {
  established: boolean
  sessionIds: string[]
  needsRekey: boolean
} {
  return { established: channel.established, sessionIds: channel.sessionIds(), needsRekey: channel.needsRekey() }
}

export function flipBit(bytes: Buffer, bit: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[bit >>> 3] ^= 0x80 >>> (bit & 7)
  return copy
}
