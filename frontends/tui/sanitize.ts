// Everything a peer sends is shown through these: no terminal escapes, no blessed tags, no bidi tricks.
import * as blessed from 'blessed'

import { displayWidth } from './widths'

export { displayWidth }

/**
 * C0 and C1 controls except newline (ESC starts every terminal sequence, BEL ends OSC titles), DEL,
 * and the Unicode bidi embeddings, overrides and isolates that can reorder what a reader sees.
 */
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Plain text safe for a terminal: controls removed (tabs become spaces, CR and CRLF newlines). */
export function stripControls(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '  ')
    .replace(CONTROLS, '')
    .replace(LONE_SURROGATE, '\ufffd')
}

/** Text safe to put inside blessed content with `tags: true`: controls removed and braces escaped. */
export function safe(text: string): string {
  return blessed.escape(stripControls(text))
}

/** Plain one-line text, for names and status text: controls removed, newlines become spaces. */
export function plainLine(text: string): string {
  return stripControls(text).replace(/\n+/g, ' ')
}

/** A one-line version of `safe`. */
export function safeLine(text: string): string {
  return blessed.escape(plainLine(text))
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

/** The graphemes of a string, so that cutting never splits an emoji or a combining mark. */
export function splitGraphemes(text: string): string[] {
  return Array.from(graphemes.segment(text), (s) => s.segment)
}

/** Cuts plain text to at most `width` columns, ending with … when it was cut. */
export function fit(text: string, width: number): string {
  if (width <= 0) return ''
  if (displayWidth(text) <= width) return text
  let out = ''
  let used = 0
  for (const g of splitGraphemes(text)) {
    const w = displayWidth(g)
    if (used + w > width - 1) break
    out += g
    used += w
  }
  return out + '…'
}
