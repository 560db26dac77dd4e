// Turns the config's plugin entries into checked plugin definitions: resolved, options validated, needs met.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Config, PluginEntry } from './config'
import { ConfigError } from './errors'
import { API_VERSION, type OptionsCheck, type PluginDefinition } from './plugin'
import type { FrameKindDeclaration } from '../protocol/frames'
import { isStandardSchema, validateStandard } from './standard-schema'
import { FrameKinds } from '../protocol/frames'

export interface LoadedPlugin {
  definition: PluginDefinition<unknown, unknown>
  options: unknown
}

const BUILT_IN_FOLDERS = [path.join(__dirname, '..', 'plugins'), path.join(__dirname, '..', 'frontends')]

/** A built-in's entry file: compiled in dist/, TypeScript when running from source (tsx). */
function builtInEntry(dir: string): string | undefined {
  return ['index.js', 'index.ts'].map((file) => path.join(dir, file)).find((file) => fs.existsSync(file))
}

/** Every built-in short name, for "did you mean" and --help. */
export function builtInNames(folder: 'plugins' | 'frontends'): string[] {
  const dir = path.join(__dirname, '..', folder)
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((name) => builtInEntry(path.join(dir, name)) !== undefined)
}

function resolveModule(request: string, configDir: string): string {
  for (const folder of BUILT_IN_FOLDERS) {
    const file = /^[a-z0-9-]+$/.test(request) ? builtInEntry(path.join(folder, request)) : undefined
    if (file) return file
  }
  if (request.startsWith('.') || path.isAbsolute(request)) return require.resolve(path.resolve(configDir, request))
  return require.resolve(request, { paths: [configDir, process.cwd()] })
}

function isDefinition(value: unknown): value is PluginDefinition<unknown, unknown> {
  const v = value as PluginDefinition<unknown, unknown> | undefined
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.create === 'function'
}

/** Puts a plugin's own option problem under its entry; a problem with the whole value ("the value must be…") has no key. */
function underOptions(prefix: string, problem: string): string {
  if (problem.startsWith('the value ')) return `${prefix} ${problem.slice('the value '.length)}`
  return `${prefix}${problem.startsWith('[') ? '' : '.'}${problem}`
}

/** A plugin's options through its check, whichever form it has; no check passes them on as they are. */
function checkOptions(
  check: OptionsCheck<unknown> | undefined,
  raw: unknown,
): { value: unknown } | { problems: string[] } {
  if (check === undefined) return { value: raw }
  if (isStandardSchema(check)) return validateStandard(check, raw)
  if (typeof check === 'function') return check(raw)
  return {
    problems: ["the value cannot be checked: the plugin's `options` is neither a function nor a Standard Schema"],
  }
}

/** Loads the plugins and the frontend the config names; every problem is reported at once, naming its entry. */
export function loadPlugins(config: Config): LoadedPlugin[] {
  const source = config.source ?? 'the config'
  const configDir = config.source && fs.existsSync(config.source) ? path.dirname(config.source) : process.cwd()
  const problems: string[] = []
  const loaded: LoadedPlugin[] = []
  const entries: Array<[string, PluginEntry]> = config.plugins.map((entry, i) => [`plugins[${i}]`, entry])
  // `none`: a program that embeds the client and taps the hooks itself needs no frontend.
  if (config.frontend !== 'none')
    entries.push(['frontend', { resolve: config.frontend, options: config.frontendOptions ?? {} }])

  for (const [at, entry] of entries) {
    let exported: unknown
    try {
      exported = require(resolveModule(entry.resolve, configDir))
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const known = [...builtInNames('plugins'), ...builtInNames('frontends')].join(', ')
      problems.push(
        code === 'MODULE_NOT_FOUND'
          ? `${at}: no plugin "${entry.resolve}" (built-in: ${known}; or a package name or a path)`
          : `${at}: plugin "${entry.resolve}" failed to load: ${(error as Error).message}`,
      )
      continue
    }
    const definition = (exported as { default?: unknown }).default ?? exported
    if (!isDefinition(definition)) {
      problems.push(`${at}: "${entry.resolve}" does not export a plugin (an object with name and create)`)
      continue
    }
    if (definition.apiVersion !== undefined && definition.apiVersion !== API_VERSION) {
      problems.push(
        `${at}: plugin "${definition.name}" was built for udsu plugin API ${JSON.stringify(definition.apiVersion)}, and this udsu has API ${API_VERSION}: install a version of the plugin made for this udsu`,
      )
      continue
    }
    if (loaded.some((p) => p.definition.name === definition.name)) {
      problems.push(`${at}: plugin "${definition.name}" is listed twice`)
      continue
    }
    const checked = checkOptions(definition.options, entry.options ?? {})
    if ('problems' in checked) {
      problems.push(...checked.problems.map((p) => underOptions(`${at} (${definition.name}).options`, p)))
      continue
    }
    loaded.push({ definition, options: checked.value })
  }

  // Frame kinds: each has one owner, so a duplicate names both plugins.
  if (!problems.length) {
    try {
      frameKindsOf(loaded)
    } catch (error) {
      problems.push((error as Error).message)
    }
  }

  if (!problems.length) {
    const provided = new Set(loaded.flatMap((p) => p.definition.provides ?? []))
    for (const { definition } of loaded) {
      for (const need of definition.needs ?? []) {
        if (!provided.has(need))
          problems.push(`plugin "${definition.name}" needs a plugin that provides "${need}", and none does`)
      }
    }
  }
  if (problems.length) throw new ConfigError(source, problems)
  return loaded
}

/** The frame kinds a client with these plugins accepts: the core's and each plugin's `frames`; throws on a duplicate. */
export function frameKindsOf(plugins: readonly LoadedPlugin[]): FrameKinds {
  const kinds = new FrameKinds()
  for (const { definition } of plugins) {
    const declared: unknown = definition.frames ?? []
    if (!Array.isArray(declared))
      throw new Error(`plugin "${definition.name}" declares frames that are not a list of { kind, name }`)
    for (const declaration of declared) kinds.register(declaration as FrameKindDeclaration, definition.name)
  }
  return kinds
}
