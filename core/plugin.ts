// What a plugin is: a name, an options check, and a factory that receives its dependencies from the container.
import type { Hooks } from './hooks'
import type { Chat, LocalUser, Logger, Pipeline, Settings, Transport } from './types'
import type { CommandRegistry } from './commands'
import type { Profile } from './profile'
import type { PeerDirectory } from './peers'
import type { TransportRegistry } from './transports'
import type { ServiceRegistry } from './services'
import type { StandardSchemaV1 } from './standard-schema'

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

export interface PluginDefinition<Options = Record<string, never>, Deps = Partial<CoreServices>> {
  /** The short name taps are registered under, so traces and errors name the plugin. */
  name: string
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
  /** Builds the plugin, which does all its work by tapping `deps.hooks`; `deps` resolves core services by name. */
  create(deps: Deps, options: Options): void
}

/** What checks a plugin's options: udsu's own function form, or any Standard Schema v1 object (zod ≥ 3.24, valibot ≥ 1). */
export type OptionsCheck<Options> = ((raw: unknown) => { value: Options } | { problems: string[] }) | StandardSchemaV1<unknown, Options>

/** Identity function that gives a plugin definition its types. */
export function definePlugin<Options = Record<string, never>, Deps = Partial<CoreServices>>(
  definition: PluginDefinition<Options, Deps>,
): PluginDefinition<Options, Deps> {
  return definition
}

/** Thrown by a tap to refuse deliberately (stop a message, no path, no session): it is not a plugin failure, and the user sees the reason. */
export class Veto extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'Veto'
  }
}

export type { Transport }

/** Thrown by a `configure` tap when the user backs out (e.g. Esc on a start screen): nothing starts, and the CLI exits with 0. */
export class Cancelled extends Veto {
  constructor(reason = 'cancelled') {
    super(reason)
    this.name = 'Cancelled'
  }
}
