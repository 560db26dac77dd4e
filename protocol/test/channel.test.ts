// The client–server channel on its own: both ends derive the same keys from the transcript; a bit flipped anywhere,
// a replay, a frame from the wrong direction, a frame too old for the window or another transcript open nothing.
import { expect } from 'chai'
import { generateKeyPairSync } from 'node:crypto'
import {
  ChannelEnd,
  decodeFrame,
  encodeJson,
  encodeServerKey,
  ephemeralKey,
  FrameKind,
  REPLAY_WINDOW,
  signTranscript,
  verifyTranscript,
  type Transcript,
} from '..'

function pair(overrides: Partial<Transcript> = {}) {
  const serverKey = generateKeyPairSync('ed25519').privateKey
  const [client, server] = [ephemeralKey(), ephemeralKey()]
  const transcript: Transcript = {
    nonce: 'ab'.repeat(16),
    name: 'alice',
    clientKey: 'PEM',
    clientEph: client.public,
    serverEph: server.public,
    serverKey: encodeServerKey(serverKey),
  }
  return {
    serverKey,
    transcript,
    client: ChannelEnd.derive('client', client, server.public, { ...transcript, ...overrides })!,
    server: ChannelEnd.derive('server', server, client.public, transcript)!,
  }
}
const body = (frame: Buffer) => decodeFrame(frame)!.body
const ping = encodeJson(FrameKind.Server, { t: 'ping', rid: '1' })

describe('protocol/channel: the client–server channel', () => {
  it('opens what the other end sealed, once, in both directions', () => {
    const { client, server } = pair()
    const sealed = client.seal(ping)
    expect(sealed[2]).to.equal(FrameKind.Channel)
    expect(sealed.includes(Buffer.from('ping'))).to.equal(false)
    const opened = server.open(body(sealed))!
    expect(opened.kind).to.equal(FrameKind.Server)
    expect(opened.body.equals(ping.subarray(3))).to.equal(true)
    expect(server.open(body(sealed)), 'a replay').to.equal(undefined)
    expect(client.open(body(server.seal(ping)))?.kind).to.equal(FrameKind.Server)
    expect(client.open(body(client.seal(ping))), 'its own frame reflected back').to.equal(undefined)
  })

  it('rejects every single-bit change, and the rejection changes nothing', () => {
    const { client, server } = pair()
    const sealed = body(client.seal(ping))
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const flipped = Buffer.from(sealed)
      flipped[bit >> 3] ^= 1 << (bit & 7)
      expect(server.open(flipped), `bit ${bit}`).to.equal(undefined)
    }
    expect(server.open(sealed)).to.not.equal(undefined)
  })

  it('opens late frames inside the window once each, none older', () => {
    const { client, server } = pair()
    const frames = Array.from({ length: REPLAY_WINDOW + 2 }, () => body(client.seal(ping)))
    expect(server.open(frames[REPLAY_WINDOW + 1])).to.not.equal(undefined)
    expect(server.open(frames[0]), 'older than the window').to.equal(undefined)
    expect(server.open(frames[2]), 'the oldest inside it').to.not.equal(undefined)
    expect(server.open(frames[2])).to.equal(undefined)
  })

  it("derives other keys from another transcript, and the server's signature covers every field", () => {
    const { client, server } = pair({ name: 'mallory' })
    expect(server.open(body(client.seal(ping)))).to.equal(undefined)
    const { serverKey, transcript } = pair()
    const signature = signTranscript(serverKey, transcript)
    expect(verifyTranscript(generateKeyPairSync('ed25519').publicKey, transcript, signature)).to.equal(false)
    for (const field of Object.keys(transcript) as Array<keyof Transcript>) {
      expect(
        verifyTranscript(serverKey, { ...transcript, [field]: transcript[field] + 'x' }, signature),
        field,
      ).to.equal(false)
    }
    expect(verifyTranscript(serverKey, transcript, signature)).to.equal(true)
  })
})
