// @ts-check
// A udsu notifier: every message received appends one line to a file (for `tail -f`, a status bar, a script).
const fs = require('node:fs/promises')
const path = require('node:path')
const { definePlugin, object, oneOf, optional, string, validate } = require('udsu')

const optionsSchema = object({
  /** The file to append to; relative paths are from the directory the client was started in. */
  file: string({ pattern: /\S/, hint: 'must name a file' }),
  /** `text`: "2026-01-01T10:00:00.000Z ann: hello"; `json`: one JSON object per line, with from, text and ts. */
  format: optional(oneOf(/** @type {const} */ (['text', 'json'])), 'text'),
})

/** @typedef {{ file: string, format: 'text' | 'json' }} NotifierOptions */

module.exports = definePlugin(
  /** @type {import('udsu').PluginDefinition<NotifierOptions, Pick<import('udsu').CoreServices, 'hooks'>>} */ ({
    name: 'notifier',
    options: (raw) => validate(optionsSchema, raw),
    create({ hooks }, { file, format }) {
      const target = path.resolve(file)
      // The directory must exist at start: a typo in the path stops the client there, not at the first message.
      hooks.init.tapPromise('notifier', async () => {
        await fs.access(path.dirname(target)).catch(() => {
          throw new Error(
            `the directory of ${target} does not exist: create it, or set notifier's file option to another path`,
          )
        })
      })
      hooks.deliver.tapPromise('notifier', async ({ from, text, ts }) => {
        // One line per message: line breaks in the text would split it, so they are written as ⏎.
        const line =
          format === 'json'
            ? JSON.stringify({ from, text, ts })
            : `${new Date(ts).toISOString()} ${from}: ${text.replace(/\r?\n/g, ' ⏎ ')}`
        await fs.appendFile(target, line + '\n')
      })
    },
  }),
)
