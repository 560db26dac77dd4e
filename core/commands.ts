// Slash commands: plugins declare them with their help; `/help` is generated from the declarations.
import type { Command, CommandOutput } from './types'

export class CommandRegistry {
  private readonly byName = new Map<string, Command>()

  /** Adds a command; a name or alias already taken throws, so two plugins cannot silently shadow each other. */
  register(command: Command): void {
    // Lines are looked up in lower case, so keys are stored that way: `/Trust` and `/trust` are one command.
    const keys = [command.name, ...(command.aliases ?? [])].map((key) => key.toLowerCase())
    for (const key of keys) {
      if (this.byName.has(key)) throw new Error(`command /${key} is already registered`)
    }
    for (const key of keys) this.byName.set(key, command)
  }

  list(): Command[] {
    return [...new Set(this.byName.values())].sort((a, b) => a.name.localeCompare(b.name))
  }

  get(name: string): Command | undefined {
    return this.byName.get(name.toLowerCase())
  }

  /** Runs a line that starts with `/`; unknown commands and failures are reported to `out`, never thrown. */
  async run(line: string, out: CommandOutput): Promise<void> {
    const match = /^\/(\S+)\s*([\s\S]*)$/.exec(line.trim())
    if (!match) return out.error('a command starts with /, e.g. /help')
    const command = this.byName.get(match[1].toLowerCase())
    if (!command) return out.error(`unknown command /${match[1]}; /help lists the commands`)
    try {
      await command.run(match[2].trim(), out)
    } catch (error) {
      out.error(`/${command.name}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  /** The text `/help` prints. */
  help(): string[] {
    return this.list().map((c) => `${c.usage.padEnd(24)} ${c.description}`)
  }
}
