// The native primitives, with exactly the parameters channel.ts uses, against trimmed Wycheproof vectors (test/vectors/).
import { expect } from 'chai'
import { createDecipheriv, createCipheriv, privateDecrypt, verify } from 'node:crypto'
import { OAEP, PSS } from '../channel'
import gcmVectors from './vectors/aes_gcm_256_96_128.json'
import oaepVectors from './vectors/rsa_oaep_2048_sha256_mgf1sha256.json'
import pssVectors from './vectors/rsa_pss_2048_sha256_mgf1_32.json'

const hex = (value: string) => Buffer.from(value, 'hex')

describe('rsa primitives against Wycheproof vectors', () => {
  describe('AES-256-GCM, 96-bit nonce, 128-bit tag', () => {
    for (const vector of gcmVectors.tests) {
      it(`tcId ${vector.tcId}: encrypts to the expected ciphertext and tag, and decrypts back`, () => {
        const cipher = createCipheriv('aes-256-gcm', hex(vector.key), hex(vector.iv), { authTagLength: 16 })
        cipher.setAAD(hex(vector.aad))
        const ciphertext = Buffer.concat([cipher.update(hex(vector.msg)), cipher.final()])
        expect(ciphertext.toString('hex')).to.equal(vector.ct)
        expect(cipher.getAuthTag().toString('hex')).to.equal(vector.tag)

        const decipher = createDecipheriv('aes-256-gcm', hex(vector.key), hex(vector.iv), { authTagLength: 16 })
        decipher.setAAD(hex(vector.aad))
        decipher.setAuthTag(hex(vector.tag))
        expect(Buffer.concat([decipher.update(hex(vector.ct)), decipher.final()]).toString('hex')).to.equal(vector.msg)
      })
    }
  })

  describe('RSA-PSS verify, SHA-256, MGF1-SHA-256, salt 32', () => {
    for (const vector of pssVectors.tests) {
      it(`tcId ${vector.tcId} (${vector.comment}) is ${vector.result}`, () => {
        let accepted: boolean
        try {
          accepted = verify('sha256', hex(vector.msg), { key: pssVectors.publicKeyPem, ...PSS }, hex(vector.sig))
        } catch {
          accepted = false
        }
        expect(accepted).to.equal(vector.result === 'valid')
      })
    }
  })

  describe('RSA-OAEP decrypt, SHA-256, MGF1-SHA-256, empty label', () => {
    for (const vector of oaepVectors.tests) {
      it(`tcId ${vector.tcId} is ${vector.result}`, () => {
        let plaintext: string | undefined
        try {
          plaintext = privateDecrypt({ key: oaepVectors.privateKeyPem, ...OAEP }, hex(vector.ct)).toString('hex')
        } catch {
          plaintext = undefined
        }
        if (vector.result === 'valid') expect(plaintext).to.equal(vector.msg)
        else expect(plaintext).to.equal(undefined)
      })
    }
  })
})
