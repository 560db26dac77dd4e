// Command-line parsing every `udsu` subcommand shares: each parses only its own flags, and every mistake is a UsageError (exit 2).
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './errors'
import { LOG_LEVELS, type LogLevel } from './log'
import { parseServerList } from './wire'

/** Parses `argv` for `udsu <command>` strictly: an unknown flag, a missing value or a stray word is a UsageError. */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  options: O,
  argv: string[],
  maxPositionals = 0,
): ParsedCommandLine<O> {
  const help = `udsu ${command} --help`
  let parsed: ParsedCommandLine<O>
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const unknown = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && /'(-[^']*)'/.exec((error as Error).message)?.[1]
    // A flag of another subcommand (`--name` given to `server`) lands here too: each parses only its own.
    if (unknown) throw new UsageError(`${unknown} is not an option of udsu ${command}`, help)
    if (code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(`udsu ${command}: ${(error as Error).message}`, help)
    throw error
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}" to udsu ${command}`, help)
  }
  return parsed
}

export type ParsedCommandLine<O extends ParseArgsConfig['options']> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>
>

/** A port given as a decimal number from `min` to 65535 (no hex, exponents or spaces, which Number() would accept). */
export function portFlag(flag: string, text: string, help: string, min = 0): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(port >= min && port <= 65535))
    throw new UsageError(`--${flag} must be a decimal number from ${min} to 65535, not "${text}"`, help)
  return port
}

/** A positive whole number of milliseconds, decimal. */
export function millisecondsFlag(flag: string, text: string, help: string): number {
  const ms = /^\d{1,9}$/.test(text) ? Number(text) : NaN
  if (!(ms >= 1)) throw new UsageError(`--${flag} must be a decimal number of milliseconds, not "${text}"`, help)
  return ms
}

export function choiceFlag<T extends string>(flag: string, text: string, choices: readonly T[], help: string): T {
  if (!(choices as readonly string[]).includes(text))
    throw new UsageError(`--${flag} must be one of ${choices.join(', ')}, not "${text}"`, help)
  return text as T
}

/** `--server HOST:PORT[#SHA256:…][,HOST:PORT…]`: one rendezvous server, or several to fail over between. */
export function serverListFlag(text: string, help: string): string {
  try {
    parseServerList(text)
    return text
  } catch (error) {
    throw new UsageError(`--server ${(error as Error).message}`, help)
  }
}

export const logLevelFlag = (text: string, help: string): LogLevel => choiceFlag('log-level', text, LOG_LEVELS, help)
