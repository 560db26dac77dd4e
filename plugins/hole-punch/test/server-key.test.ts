// The server's key as ssh's host key: pinned on first use per server address, or given as HOST:PORT#fingerprint; a
// server that presents another key gets no registration, and the user is told why.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { makeClient, startServer, type TestClient } from '../../../test/support/inprocess'
import { cleanupTemp } from '../../../test/support/processes'

const plugins = [
  { resolve: 'udp', options: {} },
  { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs: 200 } },
  { resolve: 'rsa', options: {} },
]

/** Resolves when the client reports the server state `online`. */
const serverState = (client: TestClient, online: boolean) =>
  new Promise<{ reason?: string }>((resolve) =>
    client.client.hooks.server.tap('test', (state) => state.online === online && resolve(state)),
  )

describe("hole-punch: the server's key", function () {
  this.timeout(30_000)
  after(cleanupTemp)

  it('is pinned on first use; the same address with another key is refused, named, and gets no registration', async () => {
    const first = await startServer()
    const { port } = first.address()
    const alice = makeClient('alice', `127.0.0.1:${port}`, { plugins })
    try {
      await alice.client.start()
      const pinned = JSON.parse(
        fs.readFileSync(path.join(alice.client.config.profile!, 'known-servers.json'), 'utf8'),
      ) as Record<string, string>
      expect(pinned).to.deep.equal({ [`127.0.0.1:${port}`]: first.fingerprint })
      // Someone else answers at the same address (the server is gone, or impersonated): a new key.
      await first.close()
      const impostor = await startServer({ port, altPort: false })
      try {
        const problem = await alice.waitFor('problem', alice.problems, (p) => p.code === 'server-key-changed')
        expect(problem.message)
          .to.include(impostor.fingerprint)
          .and.include(first.fingerprint)
          .and.include('known-servers.json')
        expect(impostor.online, 'registrations at the impostor').to.equal(0)
        expect(
          alice.problems.filter((p) => p.code === 'server-key-changed'),
          'told once',
        ).to.have.length(1)
      } finally {
        await impostor.close()
      }
    } finally {
      await alice.client.stop()
    }
  })

  it('given as HOST:PORT#fingerprint, registers only with that key, and pins nothing', async () => {
    const server = await startServer()
    const { port } = server.address()
    const other = await startServer()
    const wrong = makeClient('alice', `127.0.0.1:${port}#${other.fingerprint}`, { plugins })
    const right = makeClient('bob', `127.0.0.1:${port}#${server.fingerprint}`, { plugins })
    try {
      const offline = serverState(wrong, false)
      await wrong.client.start()
      expect((await offline).reason).to.include('not the expected')
      expect(wrong.problems.map((p) => p.code)).to.include('server-key-changed')
      await right.client.start()
      expect(server.online, 'registered: bob only').to.equal(1)
      expect(fs.existsSync(path.join(right.client.config.profile!, 'known-servers.json'))).to.equal(false)
    } finally {
      await Promise.all([wrong.client.stop(), right.client.stop()])
      await Promise.all([server.close(), other.close()])
    }
  })
})
