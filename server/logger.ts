// The server's log: human lines (core/log's format) or JSON lines (pino), to stderr or a file that SIGHUP reopens, with
// names and addresses optionally redacted. The server puts those only in the fields below, never in a message's text.
import pino from 'pino'
import { createLogger, type LogLevel } from '../core/log'
import type { Logger } from '../core/types'
import type { LogFormat } from './options'

/** Fields that hold a user name or a network address; `redact` replaces their values. */
export const PERSONAL_FIELDS: readonly string[] = ['name', 'peer', 'from', 'to', 'endpoint']
export const REDACTED = '[redacted]'

export interface ServerLogOptions {
  level: LogLevel
  format: LogFormat
  /** Appended to (created with mode 0600); stderr when absent. */
  file?: string
  redact: boolean
}

export interface ServerLog {
  logger: Logger
  /** Opens the file again by its name: after logrotate moved it away, new lines go to a new file. */
  reopen(): void
}

export function openServerLog(options: ServerLogOptions): ServerLog {
  // Synchronous writes: a line logged just before process.exit (a fatal error, the drain) is not lost.
  let destination: ReturnType<typeof pino.destination>
  try {
    destination = pino.destination({ dest: options.file ?? 2, sync: true, append: true, mode: 0o600 })
  } catch (error) {
    throw new Error(`cannot open the log file ${options.file}: ${(error as Error).message}`)
  }
  const base =
    options.format === 'json'
      ? pinoLogger(
          pino(
            {
              level: options.level,
              timestamp: pino.stdTimeFunctions.isoTime,
              formatters: { level: (label) => ({ level: label }) },
            },
            destination,
          ),
        )
      : createLogger(options.level, { write: (line) => destination.write(line) }, 'server')
  return {
    logger: options.redact ? redacting(base) : base,
    reopen: () => {
      if (options.file) destination.reopen()
    },
  }
}

/** core's Logger over pino: fields become the line's keys, the scope a `scope` key. */
function pinoLogger(log: pino.Logger, scope = 'server'): Logger {
  const bound = log.child({ scope })
  return {
    debug: (message, fields) => bound.debug(fields ?? {}, message),
    info: (message, fields) => bound.info(fields ?? {}, message),
    warn: (message, fields) => bound.warn(fields ?? {}, message),
    error: (message, fields) => bound.error(fields ?? {}, message),
    child: (name) => pinoLogger(log, `${scope}:${name}`),
  }
}

function redacting(logger: Logger): Logger {
  const hide = (fields?: Record<string, unknown>) => {
    if (!fields) return fields
    const copy = { ...fields }
    for (const key of PERSONAL_FIELDS) if (key in copy) copy[key] = REDACTED
    return copy
  }
  return {
    debug: (message, fields) => logger.debug(message, hide(fields)),
    info: (message, fields) => logger.info(message, hide(fields)),
    warn: (message, fields) => logger.warn(message, hide(fields)),
    error: (message, fields) => logger.error(message, hide(fields)),
    child: (name) => redacting(logger.child(name)),
  }
}
