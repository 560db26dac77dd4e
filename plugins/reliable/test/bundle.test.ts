import { expect } from 'chai'
import fc from 'fast-check'
import { bundleFrames, FRAME_BUNDLE, FrameError, MAX_BUNDLE_BYTES, unbundle } from '../../../protocol/reliable'

describe('reliable frame bundles', () => {
  it('packs frames in order into bundles no larger than MAX_BUNDLE_BYTES and unpacks them unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 1100 }), { maxLength: 40 }), (arrays) => {
        const frames = arrays.map((a) => Buffer.from(a))
        const datagrams = bundleFrames(frames)
        const back: Buffer[] = []
        for (const { bytes, frames: carried } of datagrams) {
          expect(bytes.length).to.be.at.most(MAX_BUNDLE_BYTES)
          const unpacked = carried.length === 1 ? [bytes] : unbundle(bytes)
          expect(unpacked).to.deep.equal(carried)
          back.push(...unpacked)
        }
        expect(back).to.deep.equal(frames)
      }),
    )
  })

  it('sends a frame alone as itself', () => {
    const frame = Buffer.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 1])
    expect(bundleFrames([frame])).to.deep.equal([{ bytes: frame, frames: [frame] }])
  })

  it('rejects malformed bundles with FrameError', () => {
    for (const bad of [
      [FRAME_BUNDLE],
      [FRAME_BUNDLE, 0],
      [FRAME_BUNDLE, 0, 0],
      [FRAME_BUNDLE, 0, 5, 1, 2],
      [2, 0, 1, 9],
      [...Buffer.alloc(MAX_BUNDLE_BYTES + 1, FRAME_BUNDLE)],
    ]) {
      expect(() => unbundle(Buffer.from(bad)), JSON.stringify(bad.slice(0, 6))).to.throw(FrameError)
    }
  })
})
