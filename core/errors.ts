// Errors the user acts on, shared by the parts that raise them.

/** A config that cannot be used: every problem found, each naming its key, and the file they are in. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** A command line that cannot be run: exit status 2, with the message and where to read the usage. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly help = 'udsu --help',
  ) {
    super(message)
    this.name = 'UsageError'
  }
}
