// Loads `udsu` config with cosmiconfig, lays CLI flags over it and validates the result, naming every bad key.
import * as path from 'node:path'
import { cosmiconfig } from 'cosmiconfig'
import { ConfigError } from './errors'
import { loadPlugins } from './loader'
import { LOG_LEVELS, type LogLevel } from './log'
import { either, list, number, object, oneOf, optional, string, validate, type Check } from './schema'
import { DEFAULT_SERVER, MAX_SERVERS, parseServerList } from '../protocol/endpoints'

/** A plugin named in the config, with its options; `resolve` is a built-in short name, a package or a path. */
export interface PluginEntry {
  resolve: string
  options: unknown
}

export interface Config {
  /** The user name; a frontend may ask for it when absent. */
  name?: string
  /** `host:port` of the rendezvous server, or several separated by commas (tried in order; see hole-punch). */
  server: string
  /** The profile directory; defaults to the user's data directory per name. */
  profile?: string
  /** The frontend plugin: `headless`, `tui`, a package or path, or `none` for a program that taps the hooks itself. */
  frontend: string
  /** Options for the frontend plugin (e.g. the web frontend's `port`, from --web-port). */
  frontendOptions?: Record<string, unknown>
  plugins: PluginEntry[]
  log: { level: LogLevel; file?: string }
  /** How long a tap on a message hook (or `stop`) may run before it is reported as hung and the client goes on without it. */
  hookTimeoutMs?: number
  /** Where the config came from, for error messages and relative plugin paths. */
  source?: string
}

export interface CliFlags {
  config?: string
  name?: string
  server?: string
  profile?: string
  frontend?: string
  logLevel?: string
  /** --web-port: the port the web frontend listens on. */
  webPort?: number
}

import { NAME_HINT, NAME_PATTERN } from '../protocol/names'

export { NAME_HINT, NAME_PATTERN }

export const DEFAULT_CONFIG: Omit<Config, 'source'> = {
  server: DEFAULT_SERVER,
  frontend: 'tui',
  plugins: [
    { resolve: 'udp', options: {} },
    { resolve: 'hole-punch', options: {} },
    { resolve: 'embedded-server', options: {} },
    { resolve: 'rsa', options: {} },
    { resolve: 'reliable', options: {} },
    { resolve: 'history', options: {} },
  ],
  log: { level: 'info' },
}

/** Longer than any built-in tap may wait on purpose (a handshake or a punch: at most 60 s each, by their options). */
export const DEFAULT_HOOK_TIMEOUT_MS = 120_000

export { ConfigError }

/** One server, `HOST:PORT[#SHA256:…]`, or several to fail over between: `"A:P,B:P"` or `["A:P", "B:P"]`; kept as the
 *  comma-separated string (`Settings.server`), which hole-punch splits. */
const serverAddress: Check<string> = (value, at, problems) => {
  const text = Array.isArray(value)
    ? list(string(), { maxItems: MAX_SERVERS })(value, at, problems)?.join(',')
    : string()(value, at, problems)
  if (text === undefined) return undefined
  try {
    parseServerList(text)
    return text
  } catch (error) {
    problems.push(`${at} ${(error as Error).message}`)
  }
}

const pluginEntry: Check<PluginEntry> = either(
  (value, at, problems) => {
    const resolve = string({ pattern: /\S/, hint: 'must name a plugin' })(value, at, problems)
    return resolve === undefined ? undefined : { resolve, options: {} }
  },
  (value, at, problems) => {
    const entry = object({
      resolve: string({ pattern: /\S/, hint: 'must name a plugin' }),
      options: optional((v) => v, {}),
    })(value, at, problems)
    return entry && { resolve: entry.resolve, options: entry.options }
  },
  (value) => (typeof value === 'string' ? 'a' : 'b'),
)

const pluginsSchema = optional(list(pluginEntry, { maxItems: 64 }), DEFAULT_CONFIG.plugins)
const frontendSchema = optional(string({ pattern: /\S/, hint: 'must name a frontend' }), DEFAULT_CONFIG.frontend)

const configSchema = object({
  name: optional(string({ pattern: NAME_PATTERN, hint: NAME_HINT })),
  server: optional(serverAddress, DEFAULT_CONFIG.server),
  profile: optional(string({ pattern: /\S/, hint: 'must be a directory path' })),
  frontend: frontendSchema,
  // Checked by the frontend plugin itself, like a plugin entry's options.
  frontendOptions: optional((value) => value as Record<string, unknown>),
  plugins: pluginsSchema,
  log: optional(
    object({ level: optional(oneOf(LOG_LEVELS), 'info' as LogLevel), file: optional(string()) }),
    DEFAULT_CONFIG.log,
  ),
  hookTimeoutMs: optional(number({ min: 50, max: 3_600_000, integer: true }), DEFAULT_HOOK_TIMEOUT_MS),
})

/** Finds and reads the config file (or the one named by --config), applies flags, validates; throws ConfigError. */
export async function loadConfig(flags: CliFlags = {}, cwd = process.cwd()): Promise<Config> {
  const { raw, source } = await readConfigFile(flags.config, cwd)
  const withFlags = mergeFlags(raw, flags)
  const result = validate(configSchema, withFlags)
  if ('problems' in result) throw new ConfigError(source, [...result.problems, ...pluginProblems(withFlags, source)])
  return { ...result.value, source }
}

/**
 * The config file named by --config, or the first found from `cwd` up to the project root (udsu.config.js, .udsurc, the
 * `udsu` key of package.json, …): the client and `udsu server` search the same places. `{}` when there is none.
 */
export async function readConfigFile(
  configFlag: string | undefined,
  cwd = process.cwd(),
): Promise<{ raw: unknown; source: string }> {
  const explorer = cosmiconfig('udsu', { searchStrategy: 'project' })
  try {
    const found = configFlag ? await explorer.load(path.resolve(cwd, configFlag)) : await explorer.search(cwd)
    if (!found) return { raw: {}, source: 'the built-in defaults' }
    return { raw: found.isEmpty ? {} : found.config, source: found.filepath }
  } catch (error) {
    // A JS config's own exception arrives without the file's name: cosmiconfig records it on the error.
    const where =
      (error as { filepath?: string }).filepath ?? (configFlag ? path.resolve(cwd, configFlag) : 'the udsu config')
    throw new ConfigError(where, [`could not be read: ${(error as Error).message}`])
  }
}

/** When the config has other problems, the plugins' own are reported too, so one run shows them all. */
function pluginProblems(raw: unknown, source: string): string[] {
  const record = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  const partial = validate(object({ plugins: pluginsSchema, frontend: frontendSchema }), {
    plugins: record.plugins,
    frontend: record.frontend,
  })
  if ('problems' in partial) return []
  try {
    loadPlugins({ ...DEFAULT_CONFIG, ...partial.value, source })
    return []
  } catch (error) {
    return error instanceof ConfigError ? error.problems : []
  }
}

function mergeFlags(raw: unknown, flags: CliFlags): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw
  const merged: Record<string, unknown> = { ...(raw as Record<string, unknown>) }
  if (flags.name !== undefined) merged.name = flags.name
  if (flags.server !== undefined) merged.server = flags.server
  if (flags.profile !== undefined) merged.profile = flags.profile
  if (flags.frontend !== undefined) merged.frontend = flags.frontend
  if (flags.webPort !== undefined) {
    const options =
      typeof merged.frontendOptions === 'object' && merged.frontendOptions !== null ? merged.frontendOptions : {}
    merged.frontendOptions = { ...options, port: flags.webPort }
  }
  if (flags.logLevel !== undefined) {
    const log = typeof merged.log === 'object' && merged.log !== null ? merged.log : {}
    merged.log = { ...log, level: flags.logLevel }
  }
  return merged
}
