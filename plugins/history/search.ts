// Full-text search over any script: what is indexed, how a user's words become an FTS5 query, where the matches are.
// unicode61 finds words by spaces and punctuation, which Chinese and Japanese do not use, and it drops emoji as
// punctuation. So every Han, kana and pictographic character is indexed as a token of its own (the table's tokenizer
// also counts symbols, category So, as token characters), and a query's CJK word becomes a phrase of its characters.

/** Characters that are words on their own: Han, Hiragana, Katakana, and emoji. */
const SINGLE = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u30fc\p{Extended_Pictographic}])/gu
const HAS_SINGLE = new RegExp(SINGLE.source, 'u')
const WORD_CHAR = /[\p{L}\p{N}\p{So}]/u

/** The form of a message's text that goes into the index: folded as `fold` does (unicode61 folds only Latin diacritics, so
 *  Cyrillic ё/е would differ), and with each Han, kana and emoji character standing alone. */
export function ftsText(text: string): string {
  return text.normalize('NFD').replace(MARKS, '').replace(SINGLE, ' $1 ')
}
const MARKS = /\p{M}/gu

/** Words shorter than this are matched whole: a prefix query of one or two letters touches most of a large index. */
const PREFIX_FROM = 3

/** The FTS5 MATCH expression for what a user typed: every word must occur (a word as a prefix), or undefined when no word. */
export function ftsQuery(query: string, options: { prefixes?: boolean } = {}): string | undefined {
  const terms: string[] = []
  for (const word of query.split(/\s+/u)) {
    if (!WORD_CHAR.test(word)) continue
    const tokens = ftsText(word).trim()
    const phrase = ftsPhrase(word)
    const single = !/\s/.test(tokens) && !HAS_SINGLE.test(tokens)
    terms.push(options.prefixes !== false && single && [...tokens].length >= PREFIX_FROM ? `${phrase}*` : phrase)
  }
  return terms.length ? terms.join(' ') : undefined
}

/** Text as one FTS5 phrase, taken literally (no operators): in double quotes, a quote inside doubled. */
export function ftsPhrase(text: string): string {
  return `"${ftsText(text).trim().replace(/"/g, '""')}"`
}

/** One character folded as the index folds it: lower case, diacritics removed (е and ё, e and é match). */
function fold(char: string): string {
  return char.normalize('NFD').replace(MARKS, '').toLowerCase()
}

/** The folded text, with for each of its UTF-16 units the [start, end) of the original character it came from. */
function folded(text: string): { text: string; from: number[]; to: number[] } {
  let out = ''
  const from: number[] = []
  const to: number[] = []
  let at = 0
  for (const char of text) {
    const f = fold(char)
    for (let i = 0; i < f.length; i++) {
      from.push(at)
      to.push(at + char.length)
    }
    out += f
    at += char.length
  }
  return { text: out, from, to }
}

/** One word of a query as the index holds it (folded, lower case); `prefix` when it matches longer words too. */
export interface QueryTerm {
  token: string
  prefix: boolean
}

/** The terms of a query: each word's tokens (a CJK word gives one per character), as the index splits them. */
export function queryTerms(query: string): QueryTerm[] {
  const terms: QueryTerm[] = []
  for (const word of query.split(/\s+/u)) {
    if (!WORD_CHAR.test(word)) continue
    const tokens = ftsText(word)
      .split(NOT_WORD)
      .filter(Boolean)
      .map((t) => [...t].map(fold).join(''))
    for (const token of tokens)
      terms.push({ token, prefix: tokens.length === 1 && !HAS_SINGLE.test(token) && [...token].length >= PREFIX_FROM })
  }
  return terms
}
const NOT_WORD = /[^\p{L}\p{N}\p{So}]+/u

/** Where `term` occurs in folded text: at the start of a word (and, unless a prefix, to its end); CJK characters anywhere. */
function occurrences(haystack: Folded, { token, prefix }: QueryTerm): Array<[number, number]> {
  const found: Array<[number, number]> = []
  const alone = HAS_SINGLE.test(token)
  for (let at = haystack.text.indexOf(token); at >= 0; at = haystack.text.indexOf(token, at + 1)) {
    const before = at === 0 ? '' : haystack.text[at - 1]
    const after = haystack.text.slice(at + token.length, at + token.length + 2)
    if (!alone && before && WORD_CHAR.test(before)) continue
    if (!alone && !prefix && after && WORD_CHAR.test(after)) continue
    found.push([haystack.from[at], haystack.to[at + token.length - 1]])
  }
  return found
}

type Folded = ReturnType<typeof folded>

/** Where the words of `query` occur in `text`, as sorted, non-overlapping [start, end) UTF-16 ranges of `text`. */
export function matchRanges(text: string, query: string): Array<[number, number]> {
  const haystack = folded(text)
  const ranges = queryTerms(query).flatMap((term) => occurrences(haystack, term))
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  const merged: Array<[number, number]> = []
  for (const range of ranges) {
    const last = merged[merged.length - 1]
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1])
    else merged.push([range[0], range[1]])
  }
  return merged
}

/** BM25 parameters (the usual ones, as FTS5's bm25()). */
const K1 = 1.2
const B = 0.75

/**
 * Orders candidate texts by BM25: `idf` per term (from how many messages hold it), term frequency in each text, and
 * the text's length in words against the average. Returns the candidates' indexes, best first (ties: later first).
 */
export function rankByBm25(texts: readonly string[], terms: readonly QueryTerm[], idf: readonly number[]): number[] {
  // Words as the index has them (one normalization per text, not per character: this runs over every candidate).
  const stats = texts.map((text) => {
    const words = ftsText(text).toLowerCase().split(NOT_WORD).filter(Boolean)
    const counts = terms.map(({ token, prefix }) => {
      let n = 0
      for (const word of words) if (prefix ? word.startsWith(token) : word === token) n++
      return n
    })
    return { counts, length: words.length }
  })
  const average = stats.reduce((sum, s) => sum + s.length, 0) / Math.max(1, stats.length) || 1
  const scores = stats.map(({ counts, length }) =>
    counts.reduce((score, tf, t) => score + (idf[t] * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * length) / average)), 0),
  )
  return texts.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || b - a)
}
