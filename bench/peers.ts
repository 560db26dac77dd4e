// Child processes for the benchmark: `raw` echoes or counts plain datagrams; `client` runs a full udsu client
// (udp, hole-punch, rsa, reliable) that echoes chat messages starting with "echo:".
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Client } from '../core/client'
import { createLogger } from '../core/log'
import type { ReliableHandle } from '../plugins/reliable/index'

const [mode, arg] = process.argv.slice(2)

if (mode === 'raw') {
  const socket = dgram.createSocket('udp4')
  let count = 0
  socket.on('message', (bytes, rinfo) => {
    if (bytes[0] === 1)
      socket.send(bytes, rinfo.port, rinfo.address) // ping: echo it
    else count++
  })
  process.on('message', () => process.send?.({ count }))
  socket.bind(0, '127.0.0.1', () => process.send?.({ port: socket.address().port }))
} else if (mode === 'client') {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'udsu-bench-bob-'))
  fs.copyFileSync(
    path.join(__dirname, '..', '..', 'test', 'fixtures', 'keys', 'bob.pem'),
    path.join(profile, 'identity.pem'),
  )
  fs.chmodSync(path.join(profile, 'identity.pem'), 0o600)
  const client = new Client(
    {
      name: 'bob',
      server: arg,
      profile,
      frontend: 'none',
      plugins: [
        { resolve: 'udp', options: { host: '127.0.0.1' } },
        { resolve: 'hole-punch', options: { embeddedServer: false } },
        { resolve: 'rsa', options: {} },
        { resolve: 'reliable', options: {} },
      ],
      log: { level: 'error' },
    },
    { logger: createLogger('error') },
  )
  client.hooks.deliver.tapPromise('bench', async (message) => {
    if (message.text.startsWith('echo:')) void client.send(message.from, message.text)
  })
  client.start().then(
    () => process.send?.({ ready: true }),
    (error: Error) => (console.error(error), process.exit(1)),
  )
  process.on('disconnect', () => {
    // `UDSU_BENCH_STATS=1`: the receiving side's link and journal figures, to read beside the sender's.
    if (process.env.UDSU_BENCH_STATS)
      console.error(
        'bob:',
        JSON.stringify((client.container.resolve('plugin:reliable' as never) as ReliableHandle).stats()),
      )
    void client.stop().finally(() => {
      fs.rmSync(profile, { recursive: true, force: true })
      process.exit(0)
    })
  })
}
