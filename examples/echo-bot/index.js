// @ts-check
// A udsu bot: `/echo TEXT` prints TEXT with the prefix, and every message received is answered with the prefix and the text.
const { definePlugin, list, object, optional, string, validate } = require('udsu')

const optionsSchema = object({
  /** Put before every reply; a message that already starts with it is not answered, so two bots never loop. */
  prefix: optional(string({ pattern: /\S/, hint: 'must not be blank' }), 'echo: '),
  /** Users whose messages get no reply. */
  ignore: optional(list(string()), []),
})

/** @typedef {{ prefix: string, ignore: string[] }} EchoOptions */

module.exports = definePlugin(
  /** @type {import('udsu').PluginDefinition<EchoOptions, Pick<import('udsu').CoreServices, 'hooks' | 'chat' | 'commands' | 'logger'>>} */ ({
    name: 'echo-bot',
    options: (raw) => validate(optionsSchema, raw),
    create({ hooks, chat, commands, logger }, { prefix, ignore }) {
      const log = logger.child('echo-bot')
      commands.register({
        name: 'echo',
        usage: '/echo TEXT',
        description: 'prints TEXT back, as the bot would reply',
        run: (text, out) => (text ? out.info(prefix + text) : out.error('/echo needs some text, e.g. /echo hello')),
      })
      hooks.deliver.tapPromise('echo-bot', async (message) => {
        if (ignore.includes(message.from) || message.text.startsWith(prefix)) return
        // Not awaited: a deliver tap should not hold up the next message while the reply goes out.
        chat
          .send(message.from, prefix + message.text)
          .catch((error) => log.warn(`reply to ${message.from} failed: ${error.message}`))
      })
    },
  }),
)
