// The rsa plugin against the encryption compliance suite that third-party encryption plugins run too.
import { describeEncryptionCompliance } from '..'

describeEncryptionCompliance('rsa', { plugins: [{ resolve: 'rsa', options: { bits: 2048 } }] })
