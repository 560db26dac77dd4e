// Handshake CPU cost per side at 3072 bits, against one raw native RSA-PSS signature as the baseline.
// Run: node dist/bench/handshake.js [rounds] (npm run bench runs it)
import { constants, createPrivateKey, sign } from 'node:crypto'
import { SecureChannel } from '../plugins/rsa/channel'
import { fixtureIdentity } from '../plugins/rsa/test/fixtures'

const rounds = Number(process.argv[2] ?? 20)
const warmup = 3

function cpuMs<T>(action: () => T): [T, number] {
  const start = process.cpuUsage()
  const result = action()
  const used = process.cpuUsage(start)
  return [result, (used.user + used.system) / 1000]
}

let time = 0
const now = () => time
const alice = fixtureIdentity('alice')
const bob = fixtureIdentity('bob')
const [initiator, constructMs] = cpuMs(
  () =>
    new SecureChannel({
      me: { name: 'alice', identity: alice },
      peer: { name: 'bob', publicKeyPem: bob.publicKeyPem },
      now,
    }),
)
const responder = new SecureChannel({
  me: { name: 'bob', identity: bob },
  peer: { name: 'alice', publicKeyPem: alice.publicKeyPem },
  now,
})
if (!initiator.initiator) throw new Error('expected alice to be the initiator with bob')

let initiatorMs = 0
let responderMs = 0
for (let round = 0; round < warmup + rounds; round++) {
  time += 1000 // the initiator makes at most one INIT per second
  // The cookie round trip first (an HMAC each side), then the RSA work.
  const [[first], requestMs] = cpuMs(() => responder.begin())
  const [[cookie], cookieMs] = cpuMs(() => initiator.handleHandshake(first))
  const [[request], echoMs] = cpuMs(() => responder.handleHandshake(cookie))
  const [[init], initMs] = cpuMs(() => initiator.handleHandshake(request))
  const [[resp], respMs] = cpuMs(() => responder.handleHandshake(init))
  const [, finishMs] = cpuMs(() => initiator.handleHandshake(resp))
  if (round >= warmup) {
    initiatorMs += cookieMs + initMs + finishMs
    responderMs += requestMs + echoMs + respMs
  }
}

const key = createPrivateKey(alice.privateKeyPem)
const message = Buffer.alloc(900)
for (let i = 0; i < warmup; i++)
  sign('sha256', message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
const [, signTotalMs] = cpuMs(() => {
  for (let i = 0; i < rounds; i++)
    sign('sha256', message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
})
const signMs = signTotalMs / rounds

const perInitiator = initiatorMs / rounds
const perResponder = responderMs / rounds
console.log(
  `udsu rsa handshake, 3072-bit identities, ${rounds} handshakes (after ${warmup} warm-up), CPU time per side:`,
)
console.log(`  initiator  ${perInitiator.toFixed(2)} ms  (${(perInitiator / signMs).toFixed(1)}x one PSS sign)`)
console.log(`  responder  ${perResponder.toFixed(2)} ms  (${(perResponder / signMs).toFixed(1)}x one PSS sign)`)
console.log(`  baseline: one native RSA-PSS-SHA256 sign  ${signMs.toFixed(2)} ms`)
console.log(`  one-off: SecureChannel constructor (parses both keys)  ${constructMs.toFixed(2)} ms`)
