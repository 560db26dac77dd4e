// What a plugin is: a name, an options check, and a factory that receives its dependencies from the container.
import type { Hooks } from './hooks'
import type { Chat, LocalUser, Logger, Pipeline, Settings, Transport } from './types'
import type { CommandRegistry } from './commands'
import type { Profile } from './profile'
import type { PeerDirectory } from './peers'
import type { TransportRegistry } from './transports'
import type { ServiceRegistry } from './services'
import type { StandardSchemaV1 } from './standard-schema'
import type { FrameKindDeclaration } from '../protocol/frames'

/** Everything the core registers in each client's container. A plugin declares the part it uses. */
export interface CoreServices {
  hooks: Hooks
  logger: Logger
  settings: Settings
  me: LocalUser
  profile: Profile
  peers: PeerDirectory
  transports: TransportRegistry
  commands: CommandRegistry
  chat: Chat
  pipeline: Pipeline
  /** Services plugins offer each other (e.g. `history`): `provide` in create, `get` from init on. */
  services: ServiceRegistry
}

/**
 * The plugin API this udsu offers. A plugin records the version it was built for (definePlugin fills it in from the
 * copy of udsu it imports); the loader refuses a plugin built for another. Raised when a change breaks plugins.
 */
export const API_VERSION = 1

export interface PluginDefinition<Options = Record<string, never>, Deps = Partial<CoreServices>> {
  /** The short name taps are registered under, so traces and errors name the plugin. */
  name: string
  /** The plugin API it was built for (`API_VERSION` of its udsu); set by definePlugin. Absent: the current one. */
  apiVersion?: number
  /**
   * Checks raw options from the config: a function returning the typed options or the problems found, each naming its
   * key (`core/schema.ts`'s `validate`), or a Standard Schema such as a zod or valibot schema, checked synchronously.
   */
  options?: OptionsCheck<Options>
  /** Capabilities this plugin needs from others (e.g. `transport`); loading fails early if no plugin provides one. */
  needs?: string[]
  /** Capabilities this plugin provides (e.g. `transport`, `encryption`, `frontend`). */
  provides?: string[]
  /** A frontend that draws on the terminal: logs then go to a file in the profile instead of stderr. */
  usesTerminal?: boolean
  /**
   * Frame kinds of its own (`{ kind: 16..255, name }`), registered at load: datagrams of a kind no plugin registered
   * are dropped and counted. A kind another plugin (or udsu) owns fails the load, naming both.
   */
  frames?: FrameKindDeclaration[]
  /** Builds the plugin, which does all its work by tapping `deps.hooks`; `deps` resolves core services by name. */
  create(deps: Deps, options: Options): void
}

/** What checks a plugin's options: udsu's own function form, or any Standard Schema v1 object (zod ≥ 3.24, valibot ≥ 1). */
export type OptionsCheck<Options> =
  ((raw: unknown) => { value: Options } | { problems: string[] }) | StandardSchemaV1<unknown, Options>

/** Identity function that gives a plugin definition its types. */
export function definePlugin<Options = Record<string, never>, Deps = Partial<CoreServices>>(
  definition: PluginDefinition<Options, Deps>,
): PluginDefinition<Options, Deps> {
  return { ...definition, apiVersion: definition.apiVersion ?? API_VERSION }
}

/**
 * Brands that mark a refusal. `instanceof` fails across two copies of udsu (a plugin installed with its own copy has
 * its own Veto class), so the core recognises a refusal by a registered symbol, which every copy shares.
 */
export const VETO_BRAND: unique symbol = Symbol.for('udsu.veto')
export const CANCELLED_BRAND: unique symbol = Symbol.for('udsu.cancelled')

/** Thrown by a tap to refuse deliberately (stop a message, no path, no session): it is not a plugin failure, and the user sees the reason. */
export class Veto extends Error {
  readonly [VETO_BRAND] = true
  constructor(reason: string) {
    super(reason)
    this.name = 'Veto'
  }
}

/** Whether `error` is a Veto from any copy of udsu: it carries the `Symbol.for('udsu.veto')` brand. */
export function isVeto(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[VETO_BRAND] === true
}

/** Whether `error` is a Cancelled from any copy of udsu. */
export function isCancelled(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[CANCELLED_BRAND] === true
}

export type { Transport }

/** Thrown by a `configure` tap when the user backs out (e.g. Esc on a start screen): nothing starts, and the CLI exits with 0. */
export class Cancelled extends Veto {
  readonly [CANCELLED_BRAND] = true
  constructor(reason = 'cancelled') {
    super(reason)
    this.name = 'Cancelled'
  }
}

/** A message a `compose` tap refused (or failed on, which refuses too): it was not sent. Carries its `id` and `to`. */
export class MessageRefused extends Veto {
  constructor(
    reason: string,
    readonly id: string,
    readonly to: string,
  ) {
    super(reason)
    this.name = 'MessageRefused'
  }
}

/**
 * A plugin failed while the client was starting: in its `create`, or a tap on `configure`, `init` or `start`. The start
 * stops (what had started is stopped) and the CLI prints the message, one line naming the plugin, the step and the cause.
 */
export class PluginFailure extends Error {
  constructor(
    readonly plugin: string,
    readonly step: 'create' | 'configure' | 'init' | 'start',
    readonly reason: string,
  ) {
    super(`plugin "${plugin}" failed at ${step}: ${reason}`)
    this.name = 'PluginFailure'
  }
}

/** The text of anything thrown, on one line: a plugin may throw a string, or an error whose message spans lines. */
export function describeThrown(thrown: unknown): string {
  const text =
    thrown instanceof Error || (typeof thrown === 'object' && thrown !== null && 'message' in thrown)
      ? String((thrown as Error).message)
      : String(thrown)
  return text.replace(/\s*\n\s*/g, ' ').trim() || '(no message)'
}
