// Everything a peer sends is shown through these: no terminal escapes, no blessed tags, no bidi tricks.
import * as blessed from 'blessed'

import { displayWidth } from './widths'

export { displayWidth }

/**
 * C0 and C1 controls except newline (ESC starts every terminal sequence, BEL ends OSC titles), DEL, the Unicode bidi
 * embeddings, overrides, isolates and marks that can reorder what a reader sees (U+202A–E, U+2066–9, U+200E/F, U+061C),
 * and the invisible zero-width space and byte-order mark (U+200B, U+FEFF) that make two texts look alike.
 */
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g
/**
 * Zero-width (non-)joiners: kept between two visible characters, where they build emoji sequences (👩‍💻) and join
 * Persian or Indic letters; removed anywhere else, where they only hide.
 */
const STRAY_JOINERS = /(?<![^\s\u200c\u200d])[\u200c\u200d]+|[\u200c\u200d]+(?![^\s\u200c\u200d])/g
/** In names every zero-width character goes: nothing invisible may tell two names apart. */
const JOINERS = /[\u200c\u200d]/g
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Plain text safe for a terminal: controls removed (tabs become spaces, CR and CRLF newlines). */
export function stripControls(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '  ')
    .replace(CONTROLS, '')
    .replace(STRAY_JOINERS, '')
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

/** A name as shown: one line, and no zero-width character at all. */
export function plainName(text: string): string {
  return plainLine(text).replace(JOINERS, '')
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
