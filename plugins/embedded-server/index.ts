// Starts a rendezvous server inside this client when the configured one is on this machine and none answers, so two
// clients chat with no setup. Its own plugin, so that the path plugins never import the server.
import * as os from 'node:os'
import { lookup } from 'node:dns/promises'
import { definePlugin, object, validate, type CoreServices, type EmbeddedAttempt } from '../../core'
import { parseHostPort } from '../../protocol'
import type { RendezvousServer } from '../../server'
import { EmbeddedServerStarter } from './starter'

const optionsSchema = object({})
type EmbeddedServerOptions = NonNullable<ReturnType<typeof optionsSchema>>
type Deps = Pick<CoreServices, 'hooks' | 'logger' | 'services'>

export default definePlugin<EmbeddedServerOptions, Deps>({
  name: 'embedded-server',
  provides: ['embedded-server'],
  options: (raw) => validate(optionsSchema, raw),
  create({ hooks, logger, services }) {
    const log = logger.child('embedded-server')
    let starter: EmbeddedServerStarter | undefined
    let server: RendezvousServer | undefined
    services.provide(
      'embedded-server',
      {
        async start(address: string): Promise<EmbeddedAttempt> {
          if (server || !(await isThisMachine(parseHostPort(address).host))) return { kind: 'failed' }
          const attempt = await (starter ??= new EmbeddedServerStarter(address, log)).start()
          if (attempt.kind !== 'started') return attempt
          server = attempt.server
          return { kind: 'started' }
        },
      },
      'embedded-server',
    )
    // After the path plugins' goodbyes to it (stage 0), before the transports close (stage 100).
    hooks.stop.tapPromise({ name: 'embedded-server', stage: 50 }, async () => {
      await server?.close()
    })
  },
})

/** Whether a host names this machine (loopback or one of its interface addresses). */
async function isThisMachine(host: string): Promise<boolean> {
  const address =
    host === 'localhost' ? '127.0.0.1' : (await lookup(host, { family: 4 }).catch(() => undefined))?.address
  if (!address) return false
  if (address.startsWith('127.') || address === '0.0.0.0') return true
  return Object.values(os.networkInterfaces())
    .flat()
    .some((i) => i?.address === address)
}
