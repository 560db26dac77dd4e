// @ts-check
// A udsu filter: banned words in an outgoing message are masked; a message matching `block` is refused before it
// leaves (Veto), and one arriving that matches it is not shown (a notice says so).
const { definePlugin, list, object, optional, string, validate, Veto } = require('udsu')

/**
 * A udsu check (`Check<RegExp>`): a string that compiles as a case-insensitive regular expression.
 * @type {import('udsu').Check<RegExp>}
 */
const regularExpression = (value, path, problems) => {
  const source = string()(value, path, problems)
  if (source === undefined) return undefined
  try {
    return new RegExp(source, 'iu')
  } catch (error) {
    problems.push(`${path} is not a valid regular expression: ${/** @type {Error} */ (error).message}`)
    return undefined
  }
}

const optionsSchema = object({
  /** Words replaced by the mask, whole words only, in any case. */
  words: optional(list(string({ pattern: /^[\p{L}\p{N}'-]+$/u, hint: 'must be one word' })), []),
  /** The character each letter of a banned word becomes. */
  mask: optional(string({ pattern: /^.$/u, hint: 'must be one character' }), '*'),
  /** Messages matching this pattern are refused, outgoing and incoming. */
  block: optional(regularExpression),
})

/** @typedef {{ words: string[], mask: string, block?: RegExp }} BannedWordsOptions */

/** Escapes a word for use inside a regular expression. */
const escape = (/** @type {string} */ word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

module.exports = definePlugin(
  /** @type {import('udsu').PluginDefinition<BannedWordsOptions, Pick<import('udsu').CoreServices, 'hooks'>>} */ ({
    name: 'banned-words',
    options: (raw) => validate(optionsSchema, raw),
    create({ hooks }, { words, mask, block }) {
      // Whole words: letters around a banned word make it another word ("class" is not "ass").
      const banned = words.length
        ? new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.map(escape).join('|')})(?![\\p{L}\\p{N}])`, 'giu')
        : undefined

      hooks.compose.tapPromise('banned-words', async (message) => {
        if (block?.test(message.text)) throw new Veto('not sent: the message matches the blocked pattern')
        if (!banned) return message
        return { ...message, text: message.text.replace(banned, (word) => mask.repeat([...word].length)) }
      })

      // Incoming: what others send is masked the same way, and a message matching the blocked pattern is dropped
      // unseen (its sender still gets the receipt: the refusal is this user's, not a lost message).
      hooks.incoming.tapPromise('banned-words', async (message) => {
        if (block?.test(message.text)) {
          hooks.notice.call({
            source: 'banned-words',
            message: `a message from ${message.from} matched the blocked pattern and is not shown`,
          })
          throw new Veto('matches the blocked pattern')
        }
        if (!banned) return message
        return { ...message, text: message.text.replace(banned, (word) => mask.repeat([...word].length)) }
      })
    },
  }),
)
