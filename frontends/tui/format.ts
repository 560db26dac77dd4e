// Turns the model into blessed-tagged lines. Every peer-supplied string goes through `safe`/`safeLine` here.
import type { Contact, Delivery, Entry, Status } from './model'
import * as blessed from 'blessed'
import { displayWidth, fit, plainLine, plainName, safe, safeLine } from './sanitize'

export interface Theme {
  /** False when NO_COLOR is set: emphasis by bold and inverse only. */
  colour: boolean
}

export function themeFromEnv(env: NodeJS.ProcessEnv = process.env): Theme {
  // https://no-color.org: present and not empty disables colour.
  return { colour: !env.NO_COLOR }
}

/** Sender colours; red is left out so that a name never looks like an error. */
const PALETTE = ['green', 'yellow', 'blue', 'magenta', 'cyan', 'light-green', 'light-blue', 'light-magenta']

export function senderColour(name: string): string {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}

/** Wraps already-safe text in a colour tag, or leaves it plain without colour. */
export function paint(text: string, colour: string, theme: Theme): string {
  return theme.colour ? `{${colour}-fg}${text}{/${colour}-fg}` : text
}

function bold(text: string): string {
  return `{bold}${text}{/bold}`
}

/** Local time of day as HH:MM. */
export function formatTime(ts: number): string {
  const d = new Date(ts)
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** Local calendar day as `Wed 25 Nov 2026`: the same in every locale, and never stale (no "today"). */
export function formatDay(ts: number): string {
  const d = new Date(ts)
  return `${WEEKDAYS[d.getDay()]} ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`
}

/** A conversation's lines: its entries, with a date line before the first entry of each local day. */
export function formatConversation(
  entries: readonly Entry[],
  theme: Theme,
  delivery: (id: string) => Delivery | undefined,
): string[] {
  const lines: string[] = []
  let day: string | undefined
  for (const entry of entries) {
    const label = formatDay(entry.ts)
    // A search result carries its own date: it does not start a day of the conversation.
    if (entry.kind !== 'hit' && label !== day) lines.push(paint(`── ${(day = label)} ──`, 'gray', theme))
    lines.push(...formatEntry(entry, theme, entry.kind === 'message' ? delivery(entry.id) : undefined))
  }
  return lines
}

export const STATE_MARKS = { pending: '○', sent: '✓', delivered: '✓✓', failed: '✗' } as const

export function deliveryMark(delivery: Delivery | undefined, theme: Theme): string {
  if (!delivery) return paint(STATE_MARKS.pending, 'gray', theme)
  const mark = STATE_MARKS[delivery.state]
  switch (delivery.state) {
    case 'failed':
      return paint(`${mark} ${safeLine(delivery.reason ?? 'failed')}`, 'red', theme)
    case 'delivered':
      return paint(mark, 'green', theme)
    default:
      return paint(mark, 'gray', theme)
  }
}

/**
 * The lines of one entry: `HH:MM name: text` with continuation lines of a multi-line message indented
 * under the text, and the delivery mark after one's own message.
 */
export function formatEntry(entry: Entry, theme: Theme, delivery?: Delivery): string[] {
  const time = paint(formatTime(entry.ts), 'gray', theme)
  if (entry.kind === 'notice') {
    const text = safe(entry.text).split('\n')
    const mark = entry.level === 'error' ? paint('✗', 'red', theme) : '·'
    return text.map((line, i) =>
      i === 0 ? `${time} ${mark} ${entry.level === 'error' ? paint(line, 'red', theme) : line}` : `        ${line}`,
    )
  }
  if (entry.kind === 'hit')
    return formatHit(entry, theme, paint(`${formatDay(entry.ts)} ${formatTime(entry.ts)}`, 'gray', theme))
  const name = plainName(entry.from)
  const who = paint(entry.own ? bold(blessed.escape(name)) : blessed.escape(name), senderColour(entry.from), theme)
  const indent = ' '.repeat(displayWidth(`00:00 ${name}: `))
  const lines = safe(entry.text).split('\n')
  const out = lines.map((line, i) => (i === 0 ? `${time} ${who}: ${line}` : `${indent}${line}`))
  if (entry.own) out[out.length - 1] += ` ${deliveryMark(delivery, theme)}`
  return out
}

/** A search result: `HH:MM peer · from: text`, each matched part inverse (or yellow), every piece sanitized on its own. */
function formatHit(entry: Extract<Entry, { kind: 'hit' }>, theme: Theme, time: string): string[] {
  let text = ''
  let at = 0
  for (const [start, end] of entry.matches) {
    const matched = safe(entry.text.slice(start, end))
    text +=
      safe(entry.text.slice(at, start)) +
      (theme.colour ? `{black-fg}{yellow-bg}${matched}{/yellow-bg}{/black-fg}` : `{inverse}${matched}{/inverse}`)
    at = end
  }
  text += safe(entry.text.slice(at))
  const where = `${blessed.escape(plainName(entry.peer))} · ${blessed.escape(plainName(entry.from))}`
  const [first, ...rest] = text.split('\n')
  return [`${time} ${paint('⌕', 'gray', theme)} ${where}: ${first}`, ...rest.map((line) => `        ${line}`)]
}

/** One row of the contact list, `width` columns: position for Alt+N, online dot, name, unread count. */
export function formatContact(
  contact: Contact,
  position: number,
  selected: boolean,
  width: number,
  theme: Theme,
): string {
  const key = position <= 9 ? `${position}` : ' '
  const dot = contact.online ? '●' : '○'
  const unread = contact.unread > 0 ? ` (${contact.unread})` : ''
  const name = fit(plainName(contact.name), Math.max(1, width - 4 - displayWidth(unread)))
  const pad = ' '.repeat(Math.max(0, width - displayWidth(`${key} ${dot} ${name}${unread}`)))
  const rest = `${blessed.escape(name)}${unread}${pad}`
  if (selected) return `{inverse}${key} ${dot} ${rest}{/inverse}`
  const row = `${key} ${paint(dot, contact.online ? 'green' : 'gray', theme)} ${rest}`
  return contact.unread > 0 ? bold(row) : row
}

/** The status bar: server state, the path to the current peer, the last error; cut to `width`. */
export function formatStatus(status: Status, current: Contact | undefined, width: number): string {
  const parts: string[] = []
  const server = status.server
  parts.push(
    server
      ? `server ${server.current ?? server.server} ${server.online ? 'online' : `offline${server.reason ? ` (${server.reason})` : ''}`}`
      : 'connecting…',
  )
  if (current) {
    parts.push(`${current.name}: ${current.path ?? (current.online ? 'online, no path yet' : 'offline')}`)
  }
  if (status.lastError) parts.push(`✗ ${status.lastError}`)
  return blessed.escape(fit(plainLine(' ' + parts.join(' │ ')), width))
}
