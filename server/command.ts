// `udsu server`: settings from the flags and the config file, the server, its metrics endpoint and log, and the signals
// an operator sends (TERM/INT drain and stop, USR1 logs the counters, HUP reopens the log file).
import { formatEndpoint } from '../core/wire'
import type { Endpoint } from '../core/types'
import { defaultServerDataDir, RendezvousServer } from './index'
import { openServerLog } from './logger'
import { serveMetrics } from './metrics'
import { listenAddress, loadServerSettings, parseServerFlags, SERVER_HELP } from './options'

export async function runServerCommand(argv: string[]): Promise<number> {
  const flags = parseServerFlags(argv)
  if (flags.help) return (void process.stdout.write(SERVER_HELP), 0)
  const settings = await loadServerSettings(flags.config, flags.overrides)
  const log = openServerLog(settings.log)
  const { logger } = log
  const server = new RendezvousServer({
    host: settings.host,
    port: settings.port,
    altPort: settings.altPort,
    relay: settings.relay,
    dataDir: settings.dataDir ?? defaultServerDataDir(settings.port),
    nameReleaseAfterMs: settings.nameReleaseDays * 24 * 3_600_000,
    relayLimits: settings.relayLimits,
    limits: settings.limits,
    ttlMs: settings.ttlMs,
    maxRegistrations: settings.maxRegistrations,
    watches: settings.watches,
    admission: settings.admission,
    redis: settings.redis,
    logger,
  })
  const at = await server.listen()
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined
  if (settings.metrics) {
    try {
      metrics = await serveMetrics(
        server,
        listenAddress(settings.metrics, 'metrics', () => undefined)!,
      )
    } catch (error) {
      await server.close()
      throw new Error(`the metrics endpoint cannot listen on ${settings.metrics}: ${(error as Error).message}`)
    }
    process.stdout.write(`udsu server metrics on http://${hostPort(metrics.address)}/metrics\n`)
  }
  process.stdout.write(
    `udsu server key ${server.fingerprint} (clients may pin it: --server HOST:${at.port}#${server.fingerprint})\n`,
  )
  // Last, once everything listens: scripts and tests wait for this line.
  process.stdout.write(`udsu server listening on udp ${hostPort(at)}\n`)
  logger.info('listening', { port: at.port, relay: settings.relay })

  // Listening for SIGUSR1 also keeps Node from opening its debugger on it (an inspector port nobody asked for).
  const logStats = () =>
    logger.info('stats', { online: server.online, ...server.stats, ...(server.redis ? { redis: server.redis } : {}) })
  const reopenLog = () => {
    log.reopen()
    logger.info('log file reopened')
  }
  process.on('SIGUSR1', logStats)
  process.on('SIGHUP', reopenLog)
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  logger.info(`${signal}: stopping`)
  const told = await server.drain()
  await metrics?.close()
  process.off('SIGUSR1', logStats)
  process.off('SIGHUP', reopenLog)
  logger.info('stopped', { told })
  return 0
}

/** `a.b.c.d:port`, or `[v6]:port`. */
const hostPort = (at: Endpoint) => (at.address.includes(':') ? `[${at.address}]:${at.port}` : formatEndpoint(at))
