// `udsu server`'s settings: its flags, the `server` section of the config file, every limit with its default, and the
// one function that lays the flags over the file and checks the result.
import { choiceFlag, logLevelFlag, parseCommandLine, portFlag } from '../core/args'
import { readConfigFile } from '../core/config'
import { ConfigError, UsageError } from '../core/errors'
import { LOG_LEVELS, type LogLevel } from '../core/log'
import { boolean, either, number, object, oneOf, optional, string, validate, type Check } from '../core/schema'

export const LOG_FORMATS = ['human', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export interface ServerSettings {
  host: string
  port: number
  /** The second port (NAT detection): a number (0: any free one), `false` for none, absent for `port + 1`. */
  altPort?: number | false
  relay: boolean
  /** Where the server keeps its signing key and the names bound to keys; absent: ~/.local/share/udsu-server/port-PORT. */
  dataDir?: string
  /** How long a name stays bound to its key while its owner is away. */
  nameReleaseDays: number
  /** `redis://HOST:PORT` shared with the other instances (registrations, names, introductions); absent: this instance alone. */
  redis?: string
  /** `HOST:PORT` of the Prometheus endpoint (`/metrics`); absent: none. */
  metrics?: string
  log: { level: LogLevel; format: LogFormat; file?: string; redact: boolean }
  /** A registration lives this long after its last keepalive. */
  ttlMs: number
  maxRegistrations: number
  /** Per source address: datagrams, and registration steps (which cost RSA work). */
  limits: { perSecond: number; burst: number; registrationsPerSecond: number; registrationBurst: number }
  /** Per peer, through the relay. */
  relayLimits: { framesPerSec: number; bytesPerSec: number }
  /** Names a client waits for (introduced when they register): how long, how many per client, how many in all. */
  watches: { ttlMs: number; perClient: number; total: number }
  /** Registrations between their `register` and their proof: how many at once, how long each waits; how long a cookie is good for. */
  admission: { maxPending: number; pendingMs: number; cookieMs: number }
}

/** The defaults; server/README.md lists them (a test keeps the two alike). */
export const SERVER_DEFAULTS: ServerSettings = {
  host: '0.0.0.0',
  port: 7777,
  relay: false,
  nameReleaseDays: 90,
  log: { level: 'info', format: 'human', redact: false },
  ttlMs: 45_000,
  maxRegistrations: 10_000,
  limits: { perSecond: 100, burst: 200, registrationsPerSecond: 5, registrationBurst: 10 },
  relayLimits: { framesPerSec: 100, bytesPerSec: 64 * 1024 },
  watches: { ttlMs: 60 * 60_000, perClient: 32, total: 100_000 },
  admission: { maxPending: 4096, pendingMs: 10_000, cookieMs: 60_000 },
}

export const SERVER_HELP = `udsu server — run a rendezvous server

Usage: udsu server [options]

Options (each also a key of the "server" section of the config file, which they override):
  --host HOST          address to listen on (default 0.0.0.0; :: listens on IPv6 and IPv4)
  --port PORT          UDP port (default 7777)
  --alt-port PORT      second UDP port for NAT detection (default PORT+1; 0: any free one)
  --relay              relay end-to-end sealed frames for peers that cannot connect directly
  --data-dir DIR       where the server keeps its key and the names bound to keys
                       (default ~/.local/share/udsu-server/port-PORT); clients pin the key
  --redis URL          share clients and names with the other instances on this Redis
                       (redis://HOST:PORT; default: none, this instance alone)
  --metrics HOST:PORT  serve Prometheus metrics over HTTP at /metrics (PORT 0: any free one)
  --log-level LEVEL    debug, info, warn, error or silent (default info)
  --log-format FORMAT  human (default) or json (one object per line, for log collectors)
  --log-file PATH      append logs to PATH instead of stderr; SIGHUP reopens it (for logrotate)
  --log-redact         keep user names and addresses out of the logs
  --config FILE        the config file (default: udsu.config.js, .udsurc, package.json "udsu", …)
  -h, --help

Signals: SIGTERM or SIGINT tell the clients and stop; SIGUSR1 logs the counters; SIGHUP reopens --log-file.
Exit status: 0 after a clean stop, 1 on another failure (e.g. the port is taken), 2 for a bad config or command line.
Every limit and its default: server/README.md.
`

export const SERVER_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'alt-port': { type: 'string' },
  relay: { type: 'boolean' },
  'data-dir': { type: 'string' },
  metrics: { type: 'string' },
  redis: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'log-file': { type: 'string' },
  'log-redact': { type: 'boolean' },
} as const

const HELP_POINTER = 'udsu server --help'

/** `udsu server`'s command line: `help` for --help, else the flags as config keys and the --config path. */
export function parseServerFlags(
  argv: string[],
): { help: true } | { help: false; config?: string; overrides: Record<string, unknown> } {
  const { values } = parseCommandLine('server', SERVER_FLAGS, argv)
  if (values.help) return { help: true }
  const overrides: Record<string, unknown> = {}
  const log: Record<string, unknown> = {}
  if (values.host !== undefined) {
    if (!/^\S+$/.test(values.host))
      throw new UsageError(`--host must be an address to listen on, not ${JSON.stringify(values.host)}`, HELP_POINTER)
    overrides.host = values.host
  }
  if (values.port !== undefined) overrides.port = portFlag('port', values.port, HELP_POINTER)
  if (values['alt-port'] !== undefined) overrides.altPort = portFlag('alt-port', values['alt-port'], HELP_POINTER)
  if (values.relay !== undefined) overrides.relay = values.relay
  if (values['data-dir'] !== undefined) overrides.dataDir = values['data-dir']
  if (values.metrics !== undefined) {
    listenAddress(values.metrics, '--metrics', (problem) => {
      throw new UsageError(problem, HELP_POINTER)
    })
    overrides.metrics = values.metrics
  }
  if (values.redis !== undefined) {
    const problem = redisUrlProblem(values.redis, '--redis')
    if (problem) throw new UsageError(problem, HELP_POINTER)
    overrides.redis = values.redis
  }
  if (values['log-level'] !== undefined) log.level = logLevelFlag(values['log-level'], HELP_POINTER)
  if (values['log-format'] !== undefined)
    log.format = choiceFlag('log-format', values['log-format'], LOG_FORMATS, HELP_POINTER)
  if (values['log-file'] !== undefined) log.file = values['log-file']
  if (values['log-redact'] !== undefined) log.redact = values['log-redact']
  if (Object.keys(log).length) overrides.log = log
  return { help: false, config: values.config, overrides }
}

/** `HOST:PORT` to listen on (`[v6]:PORT` too), PORT decimal from 0; reports the problem and returns undefined if not. */
export function listenAddress(
  text: string,
  at: string,
  report: (problem: string) => void,
): { host: string; port: number } | undefined {
  // Like core/wire's parseHostPort, but port 0 (any free port) is allowed: the bound address is printed.
  const match = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(text)
  const port = match ? Number(match[2]) : NaN
  if (match && port <= 65535) return { host: match[1], port }
  report(
    `${at} must be HOST:PORT with a decimal port from 0 to 65535 (e.g. 127.0.0.1:9464), not ${JSON.stringify(text)}`,
  )
  return undefined
}

/** Why `text` is not a Redis URL we can use, or undefined. */
export function redisUrlProblem(text: string, at: string): string | undefined {
  const problem = `${at} must be redis://HOST:PORT (or rediss:// for TLS, with /DB and user:password@ if needed), not ${JSON.stringify(text)}`
  try {
    const url = new URL(text)
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname ? undefined : problem
  } catch {
    return problem
  }
}

const port = (min: number) => number({ min, max: 65535, integer: true })
const positive = (max: number) => number({ min: 1, max, integer: true })
const onlyFalse: Check<false> = (value, at, problems) =>
  value === false ? false : void problems.push(`${at} must be a port number or false`)
const metricsAddress: Check<string> = (value, at, problems) => {
  const text = string()(value, at, problems)
  return text !== undefined && listenAddress(text, at, (problem) => problems.push(problem)) ? text : undefined
}

const redisUrl: Check<string> = (value, at, problems) => {
  const text = string()(value, at, problems)
  const problem = text === undefined ? undefined : redisUrlProblem(text, at)
  if (problem) problems.push(problem)
  return problem ? undefined : text
}

const D = SERVER_DEFAULTS
const serverSection = object({
  host: optional(string({ pattern: /^\S+$/, hint: 'must be an address to listen on' }), D.host),
  port: optional(port(0), D.port),
  altPort: optional(either(port(0), onlyFalse, (v) => (typeof v === 'boolean' ? 'b' : 'a'))),
  relay: optional(boolean(), D.relay),
  dataDir: optional(string({ pattern: /\S/, hint: 'must be a directory path' })),
  nameReleaseDays: optional(positive(36_500), D.nameReleaseDays),
  metrics: optional(metricsAddress),
  redis: optional(redisUrl),
  log: optional(
    object({
      level: optional(oneOf(LOG_LEVELS), D.log.level),
      format: optional(oneOf(LOG_FORMATS), D.log.format),
      file: optional(string({ pattern: /\S/, hint: 'must be a file path' })),
      redact: optional(boolean(), D.log.redact),
    }),
    D.log,
  ),
  ttlMs: optional(number({ min: 1000, max: 3_600_000, integer: true }), D.ttlMs),
  maxRegistrations: optional(positive(10_000_000), D.maxRegistrations),
  limits: optional(
    object({
      perSecond: optional(positive(1_000_000), D.limits.perSecond),
      burst: optional(positive(1_000_000), D.limits.burst),
      registrationsPerSecond: optional(positive(1_000_000), D.limits.registrationsPerSecond),
      registrationBurst: optional(positive(1_000_000), D.limits.registrationBurst),
    }),
    D.limits,
  ),
  relayLimits: optional(
    object({
      framesPerSec: optional(positive(1_000_000), D.relayLimits.framesPerSec),
      bytesPerSec: optional(positive(1_000_000_000), D.relayLimits.bytesPerSec),
    }),
    D.relayLimits,
  ),
  watches: optional(
    object({
      ttlMs: optional(number({ min: 1000, max: 24 * 3_600_000, integer: true }), D.watches.ttlMs),
      perClient: optional(positive(10_000), D.watches.perClient),
      total: optional(positive(10_000_000), D.watches.total),
    }),
    D.watches,
  ),
  admission: optional(
    object({
      maxPending: optional(positive(1_000_000), D.admission.maxPending),
      pendingMs: optional(number({ min: 1000, max: 600_000, integer: true }), D.admission.pendingMs),
      cookieMs: optional(number({ min: 1000, max: 3_600_000, integer: true }), D.admission.cookieMs),
    }),
    D.admission,
  ),
})

/**
 * The settings `udsu server` runs with: the `server` section of the config file (the client's search), the flags laid
 * over it, then checked; a bad file or value throws a ConfigError naming the file and every bad key (exit 2).
 * Other top-level keys belong to the client and are not looked at.
 */
export async function loadServerSettings(
  configFlag: string | undefined,
  overrides: Record<string, unknown>,
  cwd = process.cwd(),
): Promise<ServerSettings> {
  const { raw, source } = await readConfigFile(configFlag, cwd)
  const file = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>
  // A "HOST:PORT" string under `server` is the client's setting (the server it uses), not this section: a checkout's
  // client config does not stop `udsu server` from starting there.
  const section = file.server === undefined || typeof file.server === 'string' ? {} : file.server
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new ConfigError(source, [
      'server must be an object, the settings of `udsu server` (or a client\'s "HOST:PORT")',
    ])
  }
  const fileLog = (section as Record<string, unknown>).log
  const mergedLog = overrides.log
    ? { ...(typeof fileLog === 'object' && fileLog !== null ? fileLog : {}), ...(overrides.log as object) }
    : fileLog
  const merged = { ...section, ...overrides, ...(mergedLog !== undefined ? { log: mergedLog } : {}) }
  const result = validate(serverSection, merged, 'server')
  if ('problems' in result) throw new ConfigError(source, result.problems)
  const { altPort, metrics, dataDir, redis, ...rest } = result.value
  return {
    ...rest,
    ...(altPort !== undefined ? { altPort } : {}),
    ...(metrics !== undefined ? { metrics } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(redis !== undefined ? { redis } : {}),
    log: withoutUndefined(result.value.log),
  }
}

const withoutUndefined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
