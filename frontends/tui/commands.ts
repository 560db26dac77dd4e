// The slash commands the terminal frontend adds to the registry; /help is generated from the registry.
import { NAME_PATTERN, type Chat, type CommandRegistry } from '../../core'
import type { ChatModel } from './model'

/** What the commands need from the frontend. */
export interface CommandContext {
  chat: Chat
  model: ChatModel
  /** Sends `text` to `to` and shows it; failures are shown, not thrown. */
  send(to: string, text: string): void
  quit(): void
}

/** Shown under the commands by /help: the keys are not commands, but people look for them there. */
export const KEY_HELP = [
  'Keys: Tab / Shift+Tab or Alt+1..9 switch conversations · PgUp/PgDn or the mouse wheel scroll',
  '      ↑/↓ input history · Ctrl+J new line · //text sends text starting with / · Ctrl+C quits',
]

export function registerCommands(commands: CommandRegistry, ctx: CommandContext): void {
  const { chat, model } = ctx
  const checkName = (name: string) => {
    if (!NAME_PATTERN.test(name)) throw new Error(`"${name}" is not a user name`)
    if (name === model.me) throw new Error('that is you; pick someone else')
  }
  const open = (name: string) => {
    checkName(name)
    model.open(name)
    // A path opened now makes the first message quicker; peerConnected reports it.
    chat
      .connect(name)
      .catch((error: Error) => model.notice(`${name} is not reachable now: ${error.message}`, 'info', name))
  }

  commands.register({
    name: 'msg',
    usage: '/msg NAME TEXT',
    description: 'open the conversation with NAME and send TEXT',
    run(args, out) {
      const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(args)
      if (!match) return out.error('usage: /msg NAME TEXT')
      const [, name, text] = match
      checkName(name)
      model.open(name)
      if (text?.trim()) ctx.send(name, text)
    },
  })
  commands.register({
    name: 'open',
    aliases: ['query'],
    usage: '/open NAME',
    description: 'switch to the conversation with NAME (also /query)',
    run(args, out) {
      if (!args) return out.error('usage: /open NAME')
      open(args)
    },
  })
  commands.register({
    name: 'peers',
    usage: '/peers',
    description: 'list who is known and online',
    async run(_args, out) {
      const peers = (await chat.peers()).filter((p) => p.name !== model.me)
      model.updatePeers(peers)
      out.info(
        peers.length
          ? peers.map((p) => `${p.name}: ${p.online ? (p.path ?? 'online') : 'offline'}`).join('\n')
          : 'no one else is known yet',
      )
    },
  })
  commands.register({
    name: 'clear',
    usage: '/clear',
    description: 'clear the conversation on screen (only here, not for the peer)',
    run() {
      model.clear()
    },
  })
  commands.register({
    name: 'quit',
    aliases: ['exit'],
    usage: '/quit',
    description: 'leave udsu (also Ctrl+C)',
    run() {
      ctx.quit()
    },
  })
  commands.register({
    name: 'help',
    usage: '/help',
    description: 'list the commands and keys',
    run(_args, out) {
      out.info(['Commands:', ...commands.help().map((line) => `  ${line}`), ...KEY_HELP].join('\n'))
    },
  })
}
