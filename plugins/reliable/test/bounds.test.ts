import { expect } from 'chai'
import fc from 'fast-check'
import { FrameError, decodeFrame, encodeFrame, type DataFrame, type Frame } from '../../../protocol/reliable'
import { ReliableLink } from '../link'
import { MemoryDeliveredStore } from '../store'

const HOSTILE = 7

function victim(options: { windowFrames?: number; maxBufferedBytes?: number } = {}) {
  let now = 0
  const sent: Buffer[] = []
  const delivered: string[] = []
  const link = new ReliableLink({
    epoch: 3,
    clock: () => now,
    output: (frame) => sent.push(frame),
    deliver: (id) => {
      delivered.push(id)
    },
    store: new MemoryDeliveredStore(),
    ...options,
  })
  return { link, sent, delivered, advance: (ms: number) => (now += ms) }
}

function data(fields: Partial<DataFrame>): Buffer {
  return encodeFrame({
    kind: 'data',
    epoch: HOSTILE,
    peerEpoch: 3,
    seq: 0,
    fragIndex: 0,
    fragCount: 1,
    id: 'm',
    payload: Buffer.alloc(0),
    ...fields,
  })
}

function expectRejected(link: ReliableLink, frame: Uint8Array, code?: string): void {
  const before = JSON.stringify(link.stats())
  const deadline = link.nextDeadline()
  let error: unknown
  try {
    link.receive(frame)
  } catch (caught) {
    error = caught
  }
  expect(error).to.be.instanceOf(FrameError)
  if (code) expect((error as FrameError).code).to.equal(code)
  expect(JSON.stringify(link.stats())).to.equal(before)
  expect(link.nextDeadline()).to.equal(deadline)
}

describe('reliable link: bounds against a hostile peer', () => {
  it('drops frames beyond the receive window without buffering them', () => {
    const { link } = victim()
    expect(link.receive(data({ seq: 1_000_000, fragIndex: 0, fragCount: 1, payload: Buffer.alloc(500) }))).to.equal(
      'dropped',
    )
    expect(link.stats().bufferedFrames).to.equal(0)
    expect(link.stats().bufferedBytes).to.equal(0)
  })

  it('cannot grow the reassembly buffer past the frame and byte limits', () => {
    const windowFrames = 100
    const maxBufferedBytes = 64 * 1024 + 8 * 1100
    const { link } = victim({ windowFrames, maxBufferedBytes })
    // seq 0 never arrives, so nothing can be delivered; everything else is held or dropped.
    for (let seq = 1; seq < 20_000; seq++) {
      link.receive(data({ seq, payload: Buffer.alloc(1100 - 30, seq) }))
      const { bufferedFrames, bufferedBytes } = link.stats()
      expect(bufferedFrames).to.be.below(Math.min(windowFrames, Math.floor(maxBufferedBytes / 1100)))
      expect(bufferedBytes).to.be.at.most(maxBufferedBytes)
    }
    expect(link.stats().bufferedFrames).to.be.greaterThan(0)
  })

  it('rejects huge fragment counts and fragments that contradict each other, changing nothing', () => {
    const { link } = victim()
    expectRejected(link, data({ seq: 3, fragIndex: 0, fragCount: 65_535 }), 'protocol')
    expect(link.receive(data({ seq: 10, fragIndex: 0, fragCount: 4, id: 'x', payload: Buffer.alloc(10) }))).to.equal(
      'accepted',
    )
    expectRejected(link, data({ seq: 11, fragIndex: 1, fragCount: 5, payload: Buffer.alloc(10) }), 'protocol')
    expectRejected(link, data({ seq: 12, fragIndex: 0, fragCount: 1, payload: Buffer.alloc(10) }), 'protocol')
    expectRejected(link, data({ seq: 9, fragIndex: 0, fragCount: 2, payload: Buffer.alloc(10) }), 'protocol')
    expect(link.receive(data({ seq: 10, fragIndex: 0, fragCount: 4, id: 'x', payload: Buffer.alloc(10) }))).to.equal(
      'duplicate',
    )
  })

  it('rejects acks for frames never sent, changing nothing', () => {
    const { link } = victim()
    link.receive(data({ seq: 0 }))
    const ack = (cum: number, ranges: { start: number; length: number }[] = []) =>
      encodeFrame({ kind: 'ack', epoch: HOSTILE, peerEpoch: 3, ack: { cum, limit: cum + 10, ackDelay: 0, ranges } })
    expectRejected(link, ack(5), 'protocol')
    expectRejected(link, ack(0, [{ start: 2, length: 3 }]), 'protocol')
  })

  it('rejects oversized frames and bogus lengths', () => {
    const { link } = victim()
    expectRejected(link, data({ payload: Buffer.alloc(2000) }), 'too-large')
    const frame = data({ seq: 0, id: 'hello' })
    expectRejected(link, frame.subarray(0, frame.length - 6), 'truncated')
    const badId = Buffer.from(frame)
    badId[18] = 200 // id length beyond the frame
    expectRejected(link, badId, 'truncated')
    const ack = encodeFrame({
      kind: 'ack',
      epoch: HOSTILE,
      peerEpoch: 3,
      ack: { cum: 0, limit: 9, ackDelay: 0, ranges: [] },
    })
    expectRejected(link, Buffer.concat([ack, Buffer.from([1])]), 'trailing')
    const badCount = Buffer.from(ack)
    badCount[20] = 200 // more SACK ranges than allowed
    expectRejected(link, badCount, 'bad-field')
  })

  it('random bytes only ever raise FrameError and change nothing when they do', () => {
    const { link } = victim()
    link.receive(data({ seq: 0, payload: Buffer.from('first') }))
    const framelike = fc
      .tuple(fc.constantFrom(1, 2, 3), fc.constantFrom(0, 1, 2), fc.uint8Array({ maxLength: 1200 }))
      .map(([kind, flags, rest]) => Buffer.concat([Buffer.from([kind, flags, 0, 0, 0, HOSTILE, 0, 0, 0, 3]), rest]))
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1300 }), framelike), (bytes) => {
        const before = JSON.stringify(link.stats())
        try {
          link.receive(bytes)
        } catch (error) {
          expect(error).to.be.instanceOf(FrameError)
          expect(JSON.stringify(link.stats())).to.equal(before)
        }
        expect(link.stats().bufferedFrames).to.be.at.most(256)
      }),
      { numRuns: 3000 },
    )
  })
})

describe('frame codec', () => {
  const header = { epoch: fc.integer({ min: 1, max: 0xffffffff }), peerEpoch: fc.integer({ min: 1, max: 0xffffffff }) }
  const ackBlock = fc
    .tuple(
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 50 })), { maxLength: 32 }),
    )
    .map(([cum, gaps]) => {
      let at = cum
      const ranges = gaps.map(([gap, length]) => {
        const start = at + gap + (at === cum ? 0 : 1)
        at = start + length
        return { start, length }
      })
      return { cum, limit: cum + 5000, ackDelay: 17, ranges }
    })
  const frame: fc.Arbitrary<Frame> = fc.oneof(
    fc.record({ kind: fc.constant('ack' as const), ...header, ack: ackBlock }),
    fc
      .record({
        kind: fc.constant('data' as const),
        ...header,
        seq: fc.integer({ min: 100, max: 2 ** 31 }),
        fragCount: fc.integer({ min: 1, max: 100 }),
        fragIndexSeed: fc.nat(),
        id: fc.string({ minLength: 1, maxLength: 60 }),
        ack: fc.option(ackBlock, { nil: undefined }),
        payload: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      })
      .map(({ fragIndexSeed, id, ...rest }): DataFrame => {
        const fragIndex = fragIndexSeed % rest.fragCount
        return { ...rest, fragIndex, id: fragIndex === 0 ? id : undefined }
      }),
  )

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(frame, (original) => {
        const decoded = decodeFrame(encodeFrame(original))
        expect(JSON.parse(JSON.stringify(decoded))).to.deep.equal(JSON.parse(JSON.stringify(original)))
      }),
    )
  })

  it('rejects every truncation of a valid frame with FrameError', () => {
    fc.assert(
      fc.property(frame, fc.nat(), (original, cut) => {
        const bytes = encodeFrame(original)
        const length = cut % bytes.length
        // A DATA frame cut inside its payload is still valid (the payload is the rest of the frame).
        try {
          decodeFrame(bytes.subarray(0, length))
        } catch (error) {
          expect(error).to.be.instanceOf(FrameError)
        }
        if (original.kind === 'ack') expect(() => decodeFrame(bytes.subarray(0, length))).to.throw(FrameError)
      }),
    )
  })
})
