// A small leveled logger. Logs go to stderr (stdout belongs to frontends) or to a file; never message text or keys.
import * as fs from 'node:fs'
import type { Logger } from './types'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

export interface LogSink {
  write(line: string): void
}

export function stderrSink(): LogSink {
  return { write: (line) => process.stderr.write(line) }
}

/** Appends to a file (mode 0600), for frontends that own the terminal. */
export function fileSink(file: string): LogSink {
  const fd = fs.openSync(file, 'a', 0o600)
  return { write: (line) => fs.writeSync(fd, line) }
}

/** Holds lines until `open(file)` is called, for logs that must go to a file not yet known (the profile's). */
export class DeferredFileSink implements LogSink {
  private target?: LogSink
  private readonly pending: string[] = []

  write(line: string): void {
    if (this.target) return this.target.write(line)
    if (this.pending.length < 1000) this.pending.push(line)
  }

  open(file: string): void {
    this.target = fileSink(file)
    for (const line of this.pending.splice(0)) this.target.write(line)
  }
}

export function createLogger(level: LogLevel, sink: LogSink = stderrSink(), scope = 'udsu'): Logger {
  const threshold = LOG_LEVELS.indexOf(level)
  const emit = (at: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(at) < threshold) return
    const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''
    sink.write(`${new Date().toISOString()} ${at.padEnd(5)} [${scope}] ${message}${extra}\n`)
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (name) => createLogger(level, sink, `${scope}:${name}`),
  }
}
