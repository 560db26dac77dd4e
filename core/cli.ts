#!/usr/bin/env node
// The `udsu` command: `udsu [chat]` runs a client, `udsu server` runs a rendezvous server, `udsu history` exports and imports.
import { parseArgs } from 'node:util'
import { Client } from './client'
import { ConfigError, loadConfig } from './config'
import { createLogger, LOG_LEVELS, type LogLevel } from './log'
import { isCancelled, PluginFailure } from './plugin'
import { defaultServerDataDir, RendezvousServer } from '../server'

const HELP = `udsu — peer-to-peer chat over hole-punched UDP, end-to-end encrypted

Usage:
  udsu [chat] [options]      start a chat client
  udsu server [options]      run a rendezvous server
  udsu history export|import export or import conversations (udsu history --help)
  udsu --help | --version

Chat options:
  --name NAME          your user name (1-32 letters, digits, _ . -)
  --server HOST:PORT   the rendezvous server (default 127.0.0.1:7777; when it is on
                       this machine and none answers, the client starts one itself);
                       HOST:PORT#SHA256:… also names the server's key (else pinned on first use)
  --profile DIR        where keys and state live (default ~/.local/share/udsu/NAME)
  --frontend NAME      tui, headless (JSON lines on stdin/stdout), web (a local web page) or gui (Electron)
  --web-port PORT      the web frontend's port on 127.0.0.1 (default 0: any free one)
  --config FILE        a config file (default: udsu.config.js, .udsurc, package.json "udsu", …)
  --log-level LEVEL    debug, info, warn, error or silent (logs go to stderr)

Server options:
  --host HOST          address to listen on (default 0.0.0.0)
  --port PORT          UDP port (default 7777)
  --alt-port PORT      second UDP port for NAT detection (default PORT+1; 0: any)
  --relay              relay end-to-end sealed frames for peers that cannot connect directly
  --data-dir DIR       where the server keeps its signing key (default ~/.local/share/udsu-server/port-PORT)
  --log-level LEVEL

Exit status: 0 after a clean stop, 1 on another failure, 2 for a bad config or command line,
  3 when a plugin failed at start (stderr names it: udsu: plugin "udp" failed at start: …)

Headless frontend (one JSON object per line):
  in:  {"type":"send","to":"bob","text":"hi"}  {"type":"peers"}  {"type":"quit"}
       {"type":"history","peer":"bob","limit":50,"before":"ID"}  {"type":"search","query":"words","peer":"bob"}
  out: ready, peers, pending, sent, connected, lost, message, server, error, history, search
`

async function main(argv: string[]): Promise<number> {
  // Its own options and help: the history module parses them (loaded only when asked for).
  if (argv[0] === 'history') {
    const { runHistoryCommand, HistoryUsageError } = await import('../plugins/history/cli')
    return runHistoryCommand(argv.slice(1)).catch((error: Error) => {
      throw error instanceof HistoryUsageError ? new UsageError(error.message, 'udsu history --help') : error
    })
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      config: { type: 'string' },
      name: { type: 'string' },
      server: { type: 'string' },
      profile: { type: 'string' },
      frontend: { type: 'string' },
      'web-port': { type: 'string' },
      'log-level': { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'alt-port': { type: 'string' },
      relay: { type: 'boolean' },
      'data-dir': { type: 'string' },
    },
  })
  if (values.help) return void process.stdout.write(HELP), 0
  if (values.version) return void process.stdout.write(`${require('../../package.json').version}\n`), 0
  const command = positionals[0] ?? 'chat'
  if (positionals.length > 1 || !['chat', 'server'].includes(command)) throw new UsageError(`unknown command "${positionals.join(' ')}"`)
  const logLevel = values['log-level']
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`)
  }

  if (command === 'server') {
    const port = values.port === undefined ? 7777 : Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a number from 0 to 65535')
    const altPort = values['alt-port'] === undefined ? undefined : Number(values['alt-port'])
    if (altPort !== undefined && (!Number.isInteger(altPort) || altPort < 0 || altPort > 65535)) throw new UsageError('--alt-port must be a number from 0 to 65535')
    const dataDir = values['data-dir'] ?? defaultServerDataDir(port)
    const server = new RendezvousServer({ host: values.host ?? '0.0.0.0', port, altPort, relay: values.relay ?? false, dataDir, logger: createLogger((logLevel as LogLevel) ?? 'info', undefined, 'server') })
    const at = await server.listen()
    process.stdout.write(`udsu server listening on udp ${at.address}:${at.port}\n`)
    process.stdout.write(`udsu server key ${server.fingerprint} (clients may pin it: --server HOST:${at.port}#${server.fingerprint})\n`)
    await new Promise<void>((resolve) => onSignal(resolve))
    await server.close()
    return 0
  }

  const webPort = values['web-port'] === undefined ? undefined : Number(values['web-port'])
  if (webPort !== undefined && (!Number.isInteger(webPort) || webPort < 0 || webPort > 65535)) throw new UsageError('--web-port must be a number from 0 to 65535')
  const config = await loadConfig({
    config: values.config,
    name: values.name,
    server: values.server,
    profile: values.profile,
    frontend: values.frontend,
    logLevel,
    webPort,
  })
  if (webPort !== undefined && config.frontend !== 'web') throw new UsageError('--web-port is for the web frontend: add --frontend web')
  const client = new Client(config)
  onSignal(() => void client.stop())
  await client.start()
  await client.stopped
  return 0
}

class UsageError extends Error {
  constructor(message: string, readonly help = 'udsu --help') {
    super(message)
  }
}

/** Exit codes, as --help lists them: 1 any other failure, 2 a bad config or command line, 3 a plugin failed at start. */
function exitCodeFor(error: Error): number {
  if (error instanceof ConfigError || error instanceof UsageError) return 2
  if (error instanceof PluginFailure) return EXIT_PLUGIN_FAILED
  return 1
}
const EXIT_PLUGIN_FAILED = 3

function onSignal(handler: () => void) {
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    if (isCancelled(error)) process.exit(0)
    if (error instanceof ConfigError) process.stderr.write(`udsu: ${error.message}\n`)
    else if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`udsu: ${error.message}\nRun ${error instanceof UsageError ? error.help : 'udsu --help'} for usage.\n`)
    } else process.stderr.write(`udsu: ${error.message}\n`)
    process.exit(exitCodeFor(error))
  },
)
