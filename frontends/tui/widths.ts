// Display widths as modern terminals use them. blessed 0.1.81 predates wide emoji (Unicode 9): it draws 👋 in one
// cell while the terminal uses two, which shifts the rest of the line and leaves stale glyphs. Importing this
// module teaches blessed's width table the emoji, in this process only.

interface BlessedUnicode {
  // Plain functions that never read `this` (blessed calls them unbound too), so they are typed as properties.
  charWidth: (str: string | number, i?: number) => number
  strWidth(str: string): number
  codePointAt(str: string, i: number): number
  chars: { all: RegExp }
}

const unicode = require('blessed/lib/unicode') as BlessedUnicode

/** Wide characters: blessed's CJK ranges, the CJK of planes 2-3, and emoji shown as pictures by default. */
const WIDE_SOURCE =
  '[\\u1100-\\u115f\\u2329\\u232a\\u2e80-\\u303e\\u3040-\\ua4cf\\uac00-\\ud7a3\\uf900-\\ufaff\\ufe10-\\ufe19' +
  '\\ufe30-\\ufe6f\\uff00-\\uff60\\uffe0-\\uffe6\\u{20000}-\\u{3fffd}]|\\p{Emoji_Presentation}'
const WIDE_ONE = new RegExp(`^(?:${WIDE_SOURCE})$`, 'u')

const patched = Symbol.for('udsu.tui.wideEmoji')
const table = unicode as BlessedUnicode & { [patched]?: true }
if (!table[patched]) {
  table[patched] = true
  const narrowWidth = unicode.charWidth
  // parseContent puts a filler after each match, which the wide character then covers when drawn.
  unicode.chars.all = new RegExp(`(${WIDE_SOURCE})`, 'gu')
  unicode.charWidth = (str, i = 0) => {
    const point = typeof str === 'number' ? str : unicode.codePointAt(str, i)
    if (point !== undefined && WIDE_ONE.test(String.fromCodePoint(point))) return 2
    return narrowWidth(str, i)
  }
}

/** Columns a string takes in the terminal (wide CJK and emoji count two, combining marks none). */
export function displayWidth(text: string): number {
  return unicode.strWidth(text)
}
