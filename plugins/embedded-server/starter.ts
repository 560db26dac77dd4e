// The server a client starts inside itself when the configured one is on this machine and none answers; and what to
// tell the user when another program holds that port, so nothing can answer there and nothing can be started.
import type { EmbeddedAttempt, Logger } from '../../core'
import { parseHostPort } from '../../protocol'
import { defaultServerDataDir, RendezvousServer } from '../../server'

export class EmbeddedServerStarter {
  private takenBefore = false
  private told = false

  constructor(
    /** `host:port` of the configured server, known to be on this machine. */
    private readonly address: string,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<EmbeddedAttempt & { server?: RendezvousServer }> {
    const { host, port } = parseHostPort(this.address)
    // The server logs socket errors, a failed bind among them: that one is ours to tell (once), not an error every retry.
    let listening = false
    const serverLog = this.logger.child('server')
    const logger: Logger = { ...serverLog, error: (message, fields) => listening && serverLog.error(message, fields) }
    const server = new RendezvousServer({
      host: host === 'localhost' ? '127.0.0.1' : host,
      port,
      logger,
      dataDir: defaultServerDataDir(port),
    })
    try {
      await server.listen()
      listening = true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        this.logger.debug(`embedded server not started: ${(error as Error).message}`)
        return { kind: 'failed' }
      }
      if (!this.takenBefore) {
        this.takenBefore = true
        return { kind: 'ask-again' }
      }
      const reason = `another program holds ${this.address}`
      if (this.told) return { kind: 'held', reason }
      this.told = true
      const tell =
        `${this.address} is held by another program that does not answer as a udsu server, so no server can start there: ` +
        `stop that program, or choose another server with --server HOST:PORT (a free port on this machine starts one here)`
      this.logger.warn(tell)
      return { kind: 'held', reason, tell }
    }
    this.takenBefore = false
    this.logger.info(`no server answered at ${this.address}: started one in this client`)
    return { kind: 'started', server }
  }
}
