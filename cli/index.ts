#!/usr/bin/env node
// The `udsu` command: `udsu [chat]` runs a client, `udsu server` a rendezvous server, `udsu ping` checks one, `udsu history`
// exports and imports. Each subcommand parses only its own flags (core/args.ts); every usage mistake exits with 2.
import { Client } from '../core/client'
import { logLevelFlag, parseCommandLine, portFlag, serverListFlag } from '../core/args'
import { ConfigError, loadConfig } from '../core/config'
import { UsageError } from '../core/errors'
import { isCancelled, PluginFailure } from '../core/plugin'

const HELP = `udsu — peer-to-peer chat over hole-punched UDP, end-to-end encrypted

Usage:
  udsu [chat] [options]      start a chat client (options below)
  udsu server [options]      run a rendezvous server (udsu server --help)
  udsu ping HOST:PORT        check that a rendezvous server answers (udsu ping --help)
  udsu history export|import export or import conversations (udsu history --help)
  udsu netcheck [options]    what this network allows: UDP, public address, NAT type (udsu netcheck --help)
  udsu --help | --version

Chat options:
  --name NAME          your user name (1-32 letters, digits, _ . -)
  --server HOST:PORT   the rendezvous server (default 127.0.0.1:7777; when it is on
                       this machine and none answers, the client starts one itself);
                       several, A:P,B:P, to move to the next when one stops answering
  --profile DIR        where keys and state live (default ~/.local/share/udsu/NAME)
  --frontend NAME      tui, headless (JSON lines on stdin/stdout), web (a local web page) or gui (Electron)
  --web-port PORT      the web frontend's port on 127.0.0.1 (default 0: any free one)
  --config FILE        a config file (default: udsu.config.js, .udsurc, package.json "udsu", …)
  --log-level LEVEL    debug, info, warn, error or silent (logs go to stderr)

Exit status: 0 after a clean stop, 1 on another failure, 2 for a bad config or command line,
  3 when a plugin failed at start (stderr names it: udsu: plugin "udp" failed at start: …)

Headless frontend (one JSON object per line):
  in:  {"type":"send","to":"bob","text":"hi"}  {"type":"peers"}  {"type":"quit"}
       {"type":"history","peer":"bob","limit":50,"before":"ID"}  {"type":"search","query":"words","peer":"bob"}
  out: ready, peers, pending, sent, connected, lost, message, server, error, history, search
`

const CHAT_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  config: { type: 'string' },
  name: { type: 'string' },
  server: { type: 'string' },
  profile: { type: 'string' },
  frontend: { type: 'string' },
  'web-port': { type: 'string' },
  'log-level': { type: 'string' },
} as const

async function main(argv: string[]): Promise<number> {
  // Subcommands with their own options and help, loaded only when asked for.
  switch (argv[0]) {
    case 'server':
      return (await import('../server/command')).runServerCommand(argv.slice(1))
    case 'ping':
      return (await import('../server/ping')).runPingCommand(argv.slice(1))
    case 'history': {
      const { runHistoryCommand, HistoryUsageError } = await import('../plugins/history/cli')
      return runHistoryCommand(argv.slice(1)).catch((error: Error) => {
        throw error instanceof HistoryUsageError ? new UsageError(error.message, 'udsu history --help') : error
      })
    }
    case 'netcheck': {
      const { runNetcheckCommand, NetcheckUsageError } = await import('./netcheck')
      return runNetcheckCommand(argv.slice(1)).catch((error: Error) => {
        throw error instanceof NetcheckUsageError ? new UsageError(error.message, 'udsu netcheck --help') : error
      })
    }
    case 'chat':
      return runChat(argv.slice(1))
    default:
      if (argv[0] !== undefined && !argv[0].startsWith('-')) throw new UsageError(`unknown command "${argv[0]}"`)
      return runChat(argv)
  }
}

async function runChat(argv: string[]): Promise<number> {
  const { values } = parseCommandLine('chat', CHAT_FLAGS, argv)
  if (values.help) return (void process.stdout.write(HELP), 0)
  if (values.version)
    return (void process.stdout.write(`${(require('../../package.json') as { version: string }).version}\n`), 0)
  const logLevel = values['log-level'] === undefined ? undefined : logLevelFlag(values['log-level'], 'udsu --help')
  const webPort = values['web-port'] === undefined ? undefined : portFlag('web-port', values['web-port'], 'udsu --help')
  const config = await loadConfig({
    config: values.config,
    name: values.name,
    server: values.server === undefined ? undefined : serverListFlag(values.server, 'udsu --help'),
    profile: values.profile,
    frontend: values.frontend,
    logLevel,
    webPort,
  })
  if (webPort !== undefined && config.frontend !== 'web')
    throw new UsageError('--web-port is for the web frontend: add --frontend web')
  const client = new Client(config)
  process.once('SIGINT', () => void client.stop())
  process.once('SIGTERM', () => void client.stop())
  await client.start()
  await client.stopped
  return 0
}

/** Exit codes, as --help lists them: 1 any other failure, 2 a bad config or command line, 3 a plugin failed at start. */
function exitCodeFor(error: Error): number {
  if (error instanceof ConfigError || error instanceof UsageError) return 2
  if (error instanceof PluginFailure) return EXIT_PLUGIN_FAILED
  return 1
}
const EXIT_PLUGIN_FAILED = 3

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    if (isCancelled(error)) process.exit(0)
    if (error instanceof ConfigError) process.stderr.write(`udsu: ${error.message}\n`)
    else if (error instanceof UsageError) process.stderr.write(`udsu: ${error.message}\nRun ${error.help} for usage.\n`)
    else process.stderr.write(`udsu: ${error.message}\n`)
    process.exit(exitCodeFor(error))
  },
)
