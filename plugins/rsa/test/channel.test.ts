import { expect } from 'chai'
import { constants, createHmac, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import fc from 'fast-check'
import {
  DATA_OVERHEAD,
  HandshakeRejected,
  OpenFailed,
  peekHandshake,
  peekSessionId,
  COOKIE_BUCKET_MS,
  REPLAY_WINDOW,
  requestCookies,
  SealRefused,
  SecureChannel,
} from '../channel'
import { KeyRejected } from '../identity'
import { fixtureIdentity } from './fixtures'
import { channel, exchange, fakeClock, flipBit, observable, pair, requestWithCookie, type Pair } from './helpers'

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
const text = (value: string) => Buffer.from(value, 'utf8')
const zeroCookie = (request: Buffer) => Buffer.concat([request.subarray(0, -16), Buffer.alloc(16)])

function rawFingerprint(name: 'alice' | 'bob' | 'carol' | 'dave'): Buffer {
  return Buffer.from(fixtureIdentity(name).fingerprint.replace(/ /g, ''), 'hex')
}

/** Runs the handshake as a responder-started exchange and returns each message that crossed (after the cookie). */
function handshake(p: Pair): { request: Buffer; init: Buffer; resp: Buffer } {
  const request = requestWithCookie(p.responder, p.initiator)
  const [init] = p.initiator.handleHandshake(request)
  const [resp] = p.responder.handleHandshake(init)
  expect(p.initiator.handleHandshake(resp)).to.deep.equal([])
  return { request, init, resp }
}

describe('rsa SecureChannel', () => {
  describe('roles', () => {
    it('makes exactly one side the initiator: the one whose fingerprint sorts lower', () => {
      const clock = fakeClock()
      for (const [a, b] of [
        ['alice', 'bob'],
        ['alice', 'carol'],
        ['carol', 'dave'],
      ] as const) {
        const one = channel(a, b, clock)
        const other = channel(b, a, clock)
        expect(one.initiator).to.not.equal(other.initiator)
        expect(one.initiator).to.equal(fixtureIdentity(a).fingerprint < fixtureIdentity(b).fingerprint)
      }
    })

    it('refuses a peer key udsu does not accept, or a peer with our own key', () => {
      const alice = { name: 'alice', identity: fixtureIdentity('alice') }
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' })
      expect(() => new SecureChannel({ me: alice, peer: { name: 'bob', publicKeyPem: weak.toString() } })).to.throw(
        KeyRejected,
      )
      expect(
        () => new SecureChannel({ me: alice, peer: { name: 'mirror', publicKeyPem: alice.identity.publicKeyPem } }),
      ).to.throw(/same identity key/)
      expect(
        () =>
          new SecureChannel({
            me: alice,
            peer: { name: 'x'.repeat(65), publicKeyPem: fixtureIdentity('bob').publicKeyPem },
          }),
      ).to.throw(RangeError)
    })
  })

  describe('handshake', () => {
    for (const [a, b] of [
      ['alice', 'bob'],
      ['bob', 'alice'],
      ['carol', 'dave'],
    ] as const) {
      it(`establishes ${a} ↔ ${b} when the initiator speaks first: REQUEST, REQUEST{nonceR}, COOKIE, REQUEST{nonceR, cookie}, INIT, RESP`, () => {
        const p = pair(a, b)
        const log = exchange(p.initiator, p.responder)
        expect(log.map((step) => peekHandshake(step.bytes).type)).to.deep.equal([
          'request',
          'request',
          'cookie',
          'request',
          'init',
          'resp',
        ])
        expect(p.initiator.established && p.responder.established).to.equal(true)
        expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
      })

      it(`establishes ${a} ↔ ${b} when the responder speaks first: REQUEST{nonceR}, COOKIE, REQUEST{nonceR, cookie}, INIT, RESP`, () => {
        const p = pair(a, b)
        const log = exchange(p.responder, p.initiator)
        expect(log.map((step) => peekHandshake(step.bytes).type)).to.deep.equal([
          'request',
          'cookie',
          'request',
          'init',
          'resp',
        ])
        expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
      })
    }

    it('carries messages both ways, with and without caller header bytes, including empty ones', () => {
      const p = pair('alice', 'bob')
      handshake(p)
      expect(p.responder.open(p.initiator.seal(text('hello bob')))).to.deep.equal(text('hello bob'))
      expect(p.initiator.open(p.responder.seal(text('hello alice')))).to.deep.equal(text('hello alice'))
      const header = Buffer.from([0x44, 1, 2])
      expect(p.responder.open(p.initiator.seal(text('framed'), header), header)).to.deep.equal(text('framed'))
      expect(p.initiator.open(p.responder.seal(Buffer.alloc(0)))).to.deep.equal(Buffer.alloc(0))
    })

    it('lays out messages as documented, and peek functions route them', () => {
      const p = pair('alice', 'bob')
      const [prompt] = p.initiator.begin()
      const [cookieless] = p.responder.begin()
      const [cookie] = p.initiator.handleHandshake(cookieless)
      const { request, init, resp } = handshake(p)
      const headerLength = 3 + 'alice'.length + 'bob'.length
      expect(prompt).to.deep.equal(Buffer.from([0x01, 5, ...text('alice'), 3, ...text('bob')]))
      // REQUEST{nonceR, cookie}: zeros until the initiator's COOKIE (the same size: it never amplifies) gives one.
      expect(cookieless.length).to.equal(headerLength + 32)
      expect(cookieless.subarray(headerLength + 16)).to.deep.equal(Buffer.alloc(16))
      expect(cookie).to.deep.equal(
        Buffer.concat([
          Buffer.from([0x04, 5, ...text('alice'), 3, ...text('bob')]),
          cookieless.subarray(headerLength, headerLength + 16),
          cookie.subarray(-16),
        ]),
      )
      expect(cookie.length).to.equal(cookieless.length)
      expect(request.subarray(0, headerLength + 16)).to.deep.equal(cookieless.subarray(0, headerLength + 16))
      expect(request.subarray(headerLength + 16)).to.deep.equal(cookie.subarray(-16))
      expect(peekHandshake(cookie)).to.deep.equal({ type: 'cookie', from: 'alice', to: 'bob' })
      expect(init.length).to.equal(headerLength + 32 + 16 + 16 + 2 + 384 + 2 + 384)
      expect(resp.length).to.equal(headerLength + 32 + 16 + 2 + 384)
      expect(peekHandshake(request)).to.deep.equal({ type: 'request', from: 'bob', to: 'alice' })
      expect(peekHandshake(init)).to.deep.equal({ type: 'init', from: 'alice', to: 'bob' })
      expect(peekHandshake(resp)).to.deep.equal({ type: 'resp', from: 'bob', to: 'alice' })
      // INIT echoes the responder's nonce; RESP echoes the initiator's.
      expect(init.subarray(headerLength + 48, headerLength + 64)).to.deep.equal(
        request.subarray(headerLength, headerLength + 16),
      )
      expect(resp.subarray(headerLength + 32, headerLength + 48)).to.deep.equal(
        init.subarray(headerLength + 32, headerLength + 48),
      )
      const data = p.initiator.seal(text('abc'))
      expect(data.length).to.equal(DATA_OVERHEAD + 3)
      expect(peekSessionId(data)).to.equal(p.responder.sessionIds()[0])
      expect(data.subarray(8, 16)).to.deep.equal(Buffer.alloc(8))
      expect(p.initiator.seal(text('abc')).subarray(8, 16)).to.deep.equal(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]))
    })

    it('signs exactly the documented transcripts', () => {
      const p = pair('alice', 'bob')
      const { init, resp } = handshake(p)
      const initSigned = init.length - 2 - 384
      const respSigned = resp.length - 2 - 384
      const initTranscript = Buffer.concat([
        text('udsu-init-v1'),
        rawFingerprint('alice'),
        rawFingerprint('bob'),
        init.subarray(0, initSigned),
      ])
      const respTranscript = Buffer.concat([
        text('udsu-resp-v1'),
        rawFingerprint('bob'),
        rawFingerprint('alice'),
        init,
        resp.subarray(0, respSigned),
      ])
      const publicKey = (name: 'alice' | 'bob') => ({ key: fixtureIdentity(name).publicKeyPem, ...PSS })
      expect(verify('sha256', initTranscript, publicKey('alice'), init.subarray(initSigned + 2))).to.equal(true)
      expect(verify('sha256', respTranscript, publicKey('bob'), resp.subarray(respSigned + 2))).to.equal(true)
    })

    it('answers REQUESTs at the responder with the same nonce until an INIT uses it', () => {
      const p = pair('alice', 'bob')
      const [prompt] = p.initiator.begin()
      const [first] = p.responder.handleHandshake(prompt)
      expect(p.responder.handleHandshake(prompt)).to.deep.equal([first])
      expect(p.responder.begin()).to.deep.equal([first])
      const [withCookie] = p.responder.handleHandshake(p.initiator.handleHandshake(first)[0])
      expect(withCookie.subarray(0, -16)).to.deep.equal(first.subarray(0, -16))
      const [init] = p.initiator.handleHandshake(withCookie)
      p.initiator.handleHandshake(p.responder.handleHandshake(init)[0])
      const [fresh] = p.responder.begin()
      expect(fresh.subarray(-32, -16)).to.not.deep.equal(first.subarray(-32, -16))
      expect(fresh.subarray(-16), 'a new nonce needs a new cookie').to.deep.equal(Buffer.alloc(16))
    })

    it('makes at most one new INIT per second, and repeats the pending one for a repeated REQUEST', () => {
      const p = pair('alice', 'bob')
      const first = requestWithCookie(p.responder, p.initiator)
      const [init] = p.initiator.handleHandshake(first)
      expect(p.initiator.handleHandshake(first)).to.deep.equal([init])
      const renewed = channel('bob', 'alice', p.clock) // the responder restarted and lost its nonce
      const second = requestWithCookie(renewed, p.initiator)
      expect(p.initiator.handleHandshake(second)).to.deep.equal([])
      p.clock.advance(999)
      expect(p.initiator.handleHandshake(second)).to.deep.equal([])
      p.clock.advance(1)
      const [newInit] = p.initiator.handleHandshake(second)
      expect(newInit).to.not.deep.equal(init)
      p.initiator.handleHandshake(renewed.handleHandshake(newInit)[0])
      expect(p.initiator.sessionIds()).to.deep.equal(renewed.sessionIds())
    })

    it('recovers when the RESP is lost: the retransmitted INIT gets the same RESP, with no new session', () => {
      const p = pair('alice', 'bob')
      const [init] = p.initiator.handleHandshake(requestWithCookie(p.responder, p.initiator))
      const [resp] = p.responder.handleHandshake(init) // lost on the way
      const before = observable(p.responder)
      expect(p.initiator.begin()).to.deep.equal([init])
      expect(p.responder.handleHandshake(init)).to.deep.equal([resp])
      expect(observable(p.responder)).to.deep.equal(before)
      p.initiator.handleHandshake(resp)
      expect(p.initiator.sessionIds()).to.deep.equal(p.responder.sessionIds())
    })

    it('gives up on an unanswered INIT after the handshake timeout and asks afresh', () => {
      const p = pair('alice', 'bob', { handshakeTimeoutMs: 5000 })
      const [init] = p.initiator.handleHandshake(requestWithCookie(p.responder, p.initiator))
      p.clock.advance(4999)
      expect(p.initiator.begin()).to.deep.equal([init])
      p.clock.advance(1)
      const [prompt] = p.initiator.begin()
      expect(peekHandshake(prompt).type).to.equal('request')
      expect(() => p.initiator.handleHandshake(p.responder.handleHandshake(init)[0])).to.throw(
        HandshakeRejected,
        /answers no INIT/,
      )
    })

    it('re-establishes after the responder restarts', () => {
      const p = pair('alice', 'bob')
      handshake(p)
      const restarted = channel('bob', 'alice', p.clock)
      p.clock.advance(1000)
      exchange(restarted, p.initiator)
      expect(p.initiator.sessionIds()[0]).to.equal(restarted.sessionIds()[0])
      expect(restarted.open(p.initiator.seal(text('again')))).to.deep.equal(text('again'))
    })
  })

  describe('rejecting altered, truncated and replayed handshakes', () => {
    it('rejects every single-bit flip of INIT and RESP, changing nothing, then accepts the honest ones', () => {
      const p = pair('alice', 'bob')
      const [init] = p.initiator.handleHandshake(requestWithCookie(p.responder, p.initiator))

      const responderBefore = observable(p.responder)
      for (let bit = 0; bit < init.length * 8; bit++) {
        expect(() => p.responder.handleHandshake(flipBit(init, bit)), `INIT bit ${bit}`).to.throw(HandshakeRejected)
      }
      expect(observable(p.responder)).to.deep.equal(responderBefore)
      const [resp] = p.responder.handleHandshake(init)

      const initiatorBefore = observable(p.initiator)
      for (let bit = 0; bit < resp.length * 8; bit++) {
        expect(() => p.initiator.handleHandshake(flipBit(resp, bit)), `RESP bit ${bit}`).to.throw(HandshakeRejected)
      }
      expect(observable(p.initiator)).to.deep.equal(initiatorBefore)
      expect(p.initiator.handleHandshake(resp)).to.deep.equal([])
      expect(p.responder.open(p.initiator.seal(text('through')))).to.deep.equal(text('through'))
    })

    it('rejects every flip of a REQUEST header; a flipped nonce or cookie only yields a COOKIE, and no RSA work', () => {
      const p = pair('alice', 'bob')
      const [prompt] = p.initiator.begin()
      const request = requestWithCookie(p.responder, p.initiator)
      const headerBits = (request.length - 32) * 8
      for (let bit = 0; bit < prompt.length * 8; bit++) {
        expect(() => p.responder.handleHandshake(flipBit(prompt, bit)), `prompt bit ${bit}`).to.throw(HandshakeRejected)
      }
      for (let bit = 0; bit < headerBits; bit++) {
        expect(() => p.initiator.handleHandshake(flipBit(request, bit)), `REQUEST bit ${bit}`).to.throw(
          HandshakeRejected,
        )
      }
      const before = observable(p.initiator)
      for (let bit = headerBits; bit < request.length * 8; bit++) {
        const [reply] = p.initiator.handleHandshake(flipBit(request, bit))
        expect(peekHandshake(reply).type, `REQUEST bit ${bit}`).to.equal('cookie')
      }
      expect(observable(p.initiator)).to.deep.equal(before)
      exchange(p.responder, p.initiator, [request])
      expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
    })

    it('rejects every truncation of every handshake message, changing nothing', () => {
      const p = pair('alice', 'bob')
      const [prompt] = p.initiator.begin()
      const request = requestWithCookie(p.responder, p.initiator)
      const [init] = p.initiator.handleHandshake(request)
      const [cookie] = p.initiator.handleHandshake(zeroCookie(p.responder.begin()[0]))
      const cases: Array<[SecureChannel, Buffer, string]> = [
        [p.responder, prompt, 'prompt REQUEST'],
        [p.initiator, request, 'REQUEST{nonceR}'],
        [p.responder, init, 'INIT'],
        [p.responder, cookie, 'COOKIE'],
      ]
      for (const [receiver, message, what] of cases) {
        for (let length = 0; length < message.length; length++) {
          expect(() => receiver.handleHandshake(message.subarray(0, length)), `${what} cut to ${length}`).to.throw(
            HandshakeRejected,
          )
        }
      }
      const [resp] = p.responder.handleHandshake(init)
      const before = observable(p.initiator)
      for (let length = 0; length < resp.length; length++) {
        expect(() => p.initiator.handleHandshake(resp.subarray(0, length)), `RESP cut to ${length}`).to.throw(
          HandshakeRejected,
        )
      }
      expect(observable(p.initiator)).to.deep.equal(before)
      p.initiator.handleHandshake(resp)
      expect(p.initiator.sessionIds()).to.deep.equal(p.responder.sessionIds())
    })

    it('rejects a handshake message with trailing bytes', () => {
      const p = pair('alice', 'bob')
      const [cookie] = p.initiator.handleHandshake(p.responder.begin()[0])
      expect(() => p.responder.handleHandshake(Buffer.concat([cookie, Buffer.of(0)]))).to.throw(
        HandshakeRejected,
        /trailing/,
      )
      const [init] = p.initiator.handleHandshake(p.responder.handleHandshake(cookie)[0])
      expect(() => p.responder.handleHandshake(Buffer.concat([init, Buffer.of(0)]))).to.throw(
        HandshakeRejected,
        /trailing/,
      )
    })

    it('rejects a replayed INIT once its nonce is used up, and a replayed RESP', () => {
      const p = pair('alice', 'bob')
      const first = handshake(p)
      expect(() => p.initiator.handleHandshake(first.resp)).to.throw(HandshakeRejected, /answers no INIT/)
      p.clock.advance(1000)
      handshake(p) // a rekey replaces the cached answer
      const before = observable(p.responder)
      expect(() => p.responder.handleHandshake(first.init)).to.throw(HandshakeRejected, /echoes no nonce/)
      const restarted = channel('bob', 'alice', p.clock)
      restarted.begin()
      expect(() => restarted.handleHandshake(first.init)).to.throw(HandshakeRejected, /echoes no nonce/)
      expect(observable(p.responder)).to.deep.equal(before)
    })

    it('rejects messages in the wrong direction or for someone else', () => {
      const p = pair('alice', 'bob')
      const { request, init, resp } = handshake(p)
      expect(() => p.initiator.handleHandshake(init)).to.throw(HandshakeRejected)
      expect(() => p.responder.handleHandshake(resp)).to.throw(HandshakeRejected)
      expect(() => p.responder.handleHandshake(request)).to.throw(HandshakeRejected)
      const aliceWithCarol = channel('alice', 'carol', p.clock)
      expect(() => aliceWithCarol.handleHandshake(request)).to.throw(
        HandshakeRejected,
        /reached the channel of alice with carol/,
      )
    })

    it('stops carol, holding a valid key of her own, from posing as alice to bob or as bob to alice', () => {
      const p = pair('alice', 'bob')
      const carolAsAlice = new SecureChannel({
        me: { name: 'alice', identity: fixtureIdentity('carol') },
        peer: { name: 'bob', publicKeyPem: fixtureIdentity('bob').publicKeyPem },
        now: p.clock.now,
      })
      expect(carolAsAlice.initiator).to.equal(true)
      const [forgedInit] = carolAsAlice.handleHandshake(requestWithCookie(p.responder, carolAsAlice))
      const request = requestWithCookie(p.responder, p.initiator)
      expect(() => p.responder.handleHandshake(forgedInit)).to.throw(
        HandshakeRejected,
        /does not verify with alice's key/,
      )
      expect(p.responder.established).to.equal(false)

      // Posing as bob, carol answers alice's INIT with a RESP she signs over exactly what bob would sign.
      const [init] = p.initiator.handleHandshake(request)
      const header = Buffer.from([0x03, 3, ...text('bob'), 5, ...text('alice')])
      const signedPart = Buffer.concat([
        header,
        generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(12),
        init.subarray(11 + 32, 11 + 48),
      ])
      const transcript = Buffer.concat([
        text('udsu-resp-v1'),
        rawFingerprint('bob'),
        rawFingerprint('alice'),
        init,
        signedPart,
      ])
      const signature = sign('sha256', transcript, { key: fixtureIdentity('carol').privateKeyPem, ...PSS })
      const forgedResp = Buffer.concat([
        signedPart,
        Buffer.from([signature.length >> 8, signature.length & 0xff]),
        signature,
      ])
      expect(() => p.initiator.handleHandshake(forgedResp)).to.throw(
        HandshakeRejected,
        /does not verify with bob's key/,
      )
      expect(p.initiator.established).to.equal(false)

      // Even bob's own key does not make a RESP count unless it echoes the pending nonceI.
      const wrongEcho = Buffer.concat([
        header,
        signedPart.subarray(header.length, header.length + 32),
        Buffer.alloc(16),
      ])
      const wrongEchoTranscript = Buffer.concat([
        text('udsu-resp-v1'),
        rawFingerprint('bob'),
        rawFingerprint('alice'),
        init,
        wrongEcho,
      ])
      const bobSignature = sign('sha256', wrongEchoTranscript, { key: fixtureIdentity('bob').privateKeyPem, ...PSS })
      const wrongEchoResp = Buffer.concat([
        wrongEcho,
        Buffer.from([bobSignature.length >> 8, bobSignature.length & 0xff]),
        bobSignature,
      ])
      expect(() => p.initiator.handleHandshake(wrongEchoResp)).to.throw(HandshakeRejected, /answers no INIT/)

      // The honest handshake still completes afterwards.
      p.initiator.handleHandshake(p.responder.handleHandshake(init)[0])
      expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
    })
  })

  describe('cookies (no RSA work for a REQUEST from a source that has not shown it can receive)', () => {
    const BOB_AT = 'udp 192.0.2.7:4000'
    const typeOf = (replies: Buffer[]) => replies.map((reply) => peekHandshake(reply).type)

    it('makes the cookie PROTOCOL.md gives: HMAC-SHA256 over label, time bucket, source, names and nonce, cut to 16 bytes', () => {
      const secret = Buffer.alloc(32, 0x5a)
      const clock = fakeClock(7 * COOKIE_BUCKET_MS + 123)
      const alice = new SecureChannel({
        me: { name: 'alice', identity: fixtureIdentity('alice') },
        peer: { name: 'bob', publicKeyPem: fixtureIdentity('bob').publicKeyPem },
        now: clock.now,
        cookies: requestCookies(secret),
      })
      const bob = channel('bob', 'alice', clock)
      const [request] = bob.begin()
      const [cookie] = alice.handleHandshake(request, BOB_AT)
      const names = Buffer.from([3, ...text('bob'), 5, ...text('alice')])
      const bucket = Buffer.alloc(8)
      bucket.writeUInt32BE(7, 4)
      const source = text(BOB_AT)
      const expected = createHmac('sha256', secret)
        .update(
          Buffer.concat([
            text('udsu-cookie-v1'),
            bucket,
            Buffer.from([0, source.length]),
            source,
            names,
            request.subarray(-32, -16),
          ]),
        )
        .digest()
        .subarray(0, 16)
      expect(cookie.subarray(-16)).to.deep.equal(expected)
    })

    it('answers a REQUEST whose cookie is missing, wrong, for another nonce or from another source with a COOKIE, never an INIT', () => {
      const p = pair('alice', 'bob')
      const valid = requestWithCookie(p.responder, p.initiator, BOB_AT)
      const before = observable(p.initiator)
      expect(typeOf(p.initiator.handleHandshake(valid, 'udp 203.0.113.9:4000')), 'another source').to.deep.equal([
        'cookie',
      ])
      expect(typeOf(p.initiator.handleHandshake(valid, 'udp 192.0.2.7:4001')), 'another port').to.deep.equal(['cookie'])
      const otherNonce = Buffer.concat([valid.subarray(0, -32), randomBytes(16), valid.subarray(-16)])
      expect(typeOf(p.initiator.handleHandshake(otherNonce, BOB_AT)), 'another nonce').to.deep.equal(['cookie'])
      expect(observable(p.initiator)).to.deep.equal(before)
      expect(typeOf(p.initiator.handleHandshake(valid, BOB_AT))).to.deep.equal(['init'])
    })

    it('answers with a COOKIE, not an error, on a clock in its first time bucket', () => {
      const clock = fakeClock(0)
      const alice = channel('alice', 'bob', clock)
      const bob = channel('bob', 'alice', clock)
      const [responder, initiator] = alice.initiator ? [bob, alice] : [alice, bob]
      exchange(responder, initiator)
      expect(initiator.sessionIds()).to.have.length(1).and.deep.equal(responder.sessionIds())
    })

    it('keeps a cookie valid for its time bucket and the next one, then asks for a new one', () => {
      const p = pair('alice', 'bob')
      p.clock.advance(COOKIE_BUCKET_MS - (p.clock.now() % COOKIE_BUCKET_MS)) // the start of a bucket
      const request = requestWithCookie(p.responder, p.initiator, BOB_AT)
      p.clock.advance(2 * COOKIE_BUCKET_MS - 1)
      expect(typeOf(p.initiator.handleHandshake(request, BOB_AT))).to.deep.equal(['init'])
      p.clock.advance(1)
      expect(typeOf(p.initiator.handleHandshake(request, BOB_AT))).to.deep.equal(['cookie'])
    })

    it('costs the initiator no RSA work for forged REQUESTs, fresh nonces or one nonce repeated, and replaces no pending INIT', () => {
      const p = pair('alice', 'bob')
      const [init] = p.initiator.handleHandshake(requestWithCookie(p.responder, p.initiator, BOB_AT), BOB_AT)
      const template = p.responder.begin()[0]
      const repeated = Buffer.concat([template.subarray(0, -32), randomBytes(32)])
      for (let i = 0; i < 2000; i++) {
        p.clock.advance(1) // 1,000 a second, two seconds: past every per-peer interval
        const forged = i % 2 === 0 ? repeated : Buffer.concat([template.subarray(0, -32), randomBytes(32)])
        expect(
          typeOf(p.initiator.handleHandshake(forged, i % 3 === 0 ? BOB_AT : `udp 198.51.100.${i % 250}:${1024 + i}`)),
        ).to.deep.equal(['cookie'])
      }
      expect(p.initiator.begin(), 'the pending INIT stands').to.deep.equal([init])
      p.initiator.handleHandshake(p.responder.handleHandshake(init)[0])
      expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
    })

    it('at the responder: takes a COOKIE only for the nonce it offers, and sends the REQUEST again once per new cookie', () => {
      const p = pair('alice', 'bob')
      const [request] = p.responder.begin()
      const [cookie] = p.initiator.handleHandshake(request, BOB_AT)
      const forged = Buffer.concat([cookie.subarray(0, -32), randomBytes(32)])
      expect(() => p.responder.handleHandshake(forged)).to.throw(HandshakeRejected, /nonce we are not offering/)
      expect(p.responder.begin()).to.deep.equal([request])
      const [again] = p.responder.handleHandshake(cookie)
      expect(again.subarray(-16)).to.deep.equal(cookie.subarray(-16))
      expect(p.responder.handleHandshake(cookie), 'the same cookie again: nothing new to send').to.deep.equal([])
      expect(p.responder.begin()).to.deep.equal([again])
      const toInitiator = Buffer.concat([
        Buffer.from([0x04, 3, ...text('bob'), 5, ...text('alice')]),
        cookie.subarray(-32),
      ])
      expect(() => p.initiator.handleHandshake(toInitiator)).to.throw(HandshakeRejected, /is the initiator/)
    })

    it('completes under loss: a lost COOKIE or cookie-bearing REQUEST is made good by the next retransmission', () => {
      const p = pair('alice', 'bob')
      p.initiator.handleHandshake(p.responder.begin()[0], BOB_AT) // the COOKIE is lost
      const [cookie] = p.initiator.handleHandshake(p.responder.begin()[0], BOB_AT) // retransmitted REQUEST, new COOKIE
      p.responder.handleHandshake(cookie) // the REQUEST with the cookie is lost
      const [init] = p.initiator.handleHandshake(p.responder.begin()[0], BOB_AT) // the retransmission carries it
      expect(peekHandshake(init).type).to.equal('init')
      p.initiator.handleHandshake(p.responder.handleHandshake(init)[0])
      expect(p.initiator.sessionIds()).to.have.length(1).and.deep.equal(p.responder.sessionIds())
    })
  })

  describe('data', () => {
    let p: Pair
    beforeEach(() => {
      p = pair('alice', 'bob')
      handshake(p)
    })

    it('refuses to seal before a session exists', () => {
      const fresh = pair('alice', 'bob')
      expect(() => fresh.initiator.seal(text('too early'))).to.throw(SealRefused, /no session/)
      expect(() => fresh.responder.open(p.initiator.seal(text('x')))).to.throw(OpenFailed, /no \(more\) keys/)
    })

    it('rejects every single-bit flip of a DATA body and of its header bytes, then opens the honest one', () => {
      const header = text('hdr')
      const body = p.initiator.seal(text('the plaintext'), header)
      const before = observable(p.responder)
      for (let bit = 0; bit < body.length * 8; bit++) {
        expect(() => p.responder.open(flipBit(body, bit), header), `bit ${bit}`).to.throw(OpenFailed)
      }
      for (let bit = 0; bit < header.length * 8; bit++) {
        expect(() => p.responder.open(body, flipBit(header, bit)), `header bit ${bit}`).to.throw(OpenFailed)
      }
      expect(() => p.responder.open(body)).to.throw(OpenFailed)
      expect(observable(p.responder)).to.deep.equal(before)
      expect(p.responder.open(body, header)).to.deep.equal(text('the plaintext'))
    })

    it('rejects every truncation of a DATA body', () => {
      const body = p.responder.seal(text('some words'))
      for (let length = 0; length < body.length; length++) {
        expect(() => p.initiator.open(body.subarray(0, length)), `cut to ${length}`).to.throw(OpenFailed)
      }
      expect(p.initiator.open(body)).to.deep.equal(text('some words'))
    })

    it('opens each counter once: a replayed DATA body is rejected', () => {
      const body = p.initiator.seal(text('once'))
      p.responder.open(body)
      expect(() => p.responder.open(body)).to.throw(OpenFailed, /already opened/)
    })

    it('opens out-of-order messages within the window once each, and rejects ones that fell out of it', () => {
      const bodies = Array.from({ length: 10 }, (_, index) => p.initiator.seal(text(`m${index}`)))
      for (const index of [9, 3, 0, 7, 1, 8, 2, 6, 5, 4]) {
        expect(p.responder.open(bodies[index]).toString()).to.equal(`m${index}`)
      }
      for (const body of bodies) expect(() => p.responder.open(body)).to.throw(OpenFailed, /already opened/)

      const more = Array.from({ length: REPLAY_WINDOW + 1 }, (_, index) => p.initiator.seal(text(`n${index}`)))
      p.responder.open(more[REPLAY_WINDOW]) // counter 10 + 2048
      expect(() => p.responder.open(more[0])).to.throw(OpenFailed, /too old/) // 2048 behind
      expect(p.responder.open(more[1]).toString()).to.equal('n1') // 2047 behind: just inside
      expect(() => p.responder.open(more[1])).to.throw(OpenFailed, /already opened/)
    })

    it('does not let a forged body with a high counter move the window', () => {
      const honest = p.initiator.seal(text('first'))
      const forged = Buffer.from(honest)
      forged.writeUInt32BE(0xffff, 8)
      expect(() => p.responder.open(forged)).to.throw(OpenFailed)
      expect(p.responder.open(honest)).to.deep.equal(text('first'))
    })

    it('rejects a body sealed by the same side (the directions have separate keys)', () => {
      const body = p.initiator.seal(text('to myself'))
      expect(() => p.initiator.open(body)).to.throw(OpenFailed, /failed authentication/)
    })
  })

  describe('rekeying', () => {
    it('asks for a rekey after N sealed messages; in-flight messages of the old session open during the grace period, not after', () => {
      const p = pair('alice', 'bob', { rekeyAfterMessages: 3, graceMs: 60_000 })
      handshake(p)
      const [oldSession] = p.initiator.sessionIds()
      const m0 = p.initiator.seal(text('m0'))
      const m1 = p.initiator.seal(text('m1'))
      expect(p.initiator.needsRekey()).to.equal(false)
      const m2 = p.initiator.seal(text('m2'))
      const lateFromOld = p.responder.seal(text('late'))
      const veryLate = p.initiator.seal(text('very late'))
      expect(p.initiator.needsRekey()).to.equal(true)
      expect(p.responder.needsRekey()).to.equal(false)
      expect(p.responder.open(m0)).to.deep.equal(text('m0'))

      p.clock.advance(1000)
      exchange(p.initiator, p.responder)
      const [newSession] = p.initiator.sessionIds()
      expect(newSession).to.not.equal(oldSession)
      expect(p.initiator.sessionIds()).to.deep.equal([newSession, oldSession]).and.deep.equal(p.responder.sessionIds())
      expect(p.initiator.needsRekey()).to.equal(false)
      expect(peekSessionId(p.initiator.seal(text('new')))).to.equal(newSession)

      p.clock.advance(59_999)
      expect(p.responder.open(m2)).to.deep.equal(text('m2'))
      expect(p.responder.open(m1)).to.deep.equal(text('m1'))
      expect(p.initiator.open(lateFromOld)).to.deep.equal(text('late'))
      p.clock.advance(1)
      expect(p.responder.sessionIds()).to.deep.equal([newSession])
      expect(() => p.responder.open(veryLate)).to.throw(OpenFailed, /no \(more\) keys/)
      expect(p.initiator.open(p.responder.seal(text('fine')))).to.deep.equal(text('fine'))
    })

    it('asks for a rekey once the session is older than rekeyAfterMs', () => {
      const p = pair('alice', 'bob', { rekeyAfterMs: 3_600_000 })
      expect(p.initiator.needsRekey()).to.equal(false)
      handshake(p)
      p.clock.advance(3_599_999)
      expect(p.responder.needsRekey()).to.equal(false)
      p.clock.advance(1)
      expect(p.responder.needsRekey()).to.equal(true)
      exchange(p.responder, p.initiator)
      expect(p.responder.needsRekey()).to.equal(false)
    })

    it('refuses to seal past maxMessagesPerSession, so a counter can never wrap', () => {
      const p = pair('alice', 'bob', { rekeyAfterMessages: 1, maxMessagesPerSession: 2 })
      handshake(p)
      p.initiator.seal(text('1'))
      p.initiator.seal(text('2'))
      expect(() => p.initiator.seal(text('3'))).to.throw(SealRefused, /rekey first/)
      p.clock.advance(1000)
      exchange(p.initiator, p.responder)
      expect(p.responder.open(p.initiator.seal(text('3')))).to.deep.equal(text('3'))
    })
  })

  describe('arbitrary input', () => {
    const typed = (error: unknown) => error instanceof HandshakeRejected || error instanceof OpenFailed

    function survives(action: () => unknown): boolean {
      try {
        action()
        return true
      } catch (error) {
        if (typed(error)) return true
        throw error
      }
    }

    it('never crashes peekHandshake, handleHandshake, peekSessionId or open: only typed errors', () => {
      const p = pair('alice', 'bob')
      const honest = handshake(p)
      const sessionId = Buffer.from(p.initiator.sessionIds()[0], 'hex')
      const prefixes = [
        Buffer.alloc(0),
        honest.request.subarray(0, 10),
        honest.init.subarray(0, 11),
        honest.init.subarray(0, 75),
        honest.resp.subarray(0, 59),
        sessionId,
      ]
      fc.assert(
        fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 1200 }), (prefix, tail) => {
          const bytes = Buffer.concat([prefix, tail])
          for (const receiver of [p.initiator, p.responder]) {
            survives(() => peekHandshake(bytes))
            survives(() => receiver.handleHandshake(bytes))
            survives(() => peekSessionId(bytes))
            survives(() => receiver.open(bytes))
            survives(() => receiver.open(bytes, bytes))
          }
          return true
        }),
        { numRuns: 400 },
      )
      expect(p.responder.open(p.initiator.seal(text('still fine')))).to.deep.equal(text('still fine'))
    })

    it('never crashes on random edits of real messages', () => {
      const p = pair('alice', 'bob')
      const honest = handshake(p)
      const data = p.initiator.seal(text('payload'))
      const messages = [honest.request, honest.init, honest.resp, data]
      fc.assert(
        fc.property(
          fc.constantFrom(...messages),
          fc.nat(),
          fc.nat(),
          fc.uint8Array({ maxLength: 8 }),
          (message, at, cut, insert) => {
            const start = at % (message.length + 1)
            const end = Math.min(message.length, start + (cut % 8))
            const edited = Buffer.concat([message.subarray(0, start), insert, message.subarray(end)])
            for (const receiver of [p.initiator, p.responder]) {
              survives(() => receiver.handleHandshake(edited))
              survives(() => receiver.open(edited))
            }
            return true
          },
        ),
        { numRuns: 300 },
      )
    })
  })
})
