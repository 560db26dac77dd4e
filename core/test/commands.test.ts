// The slash-command registry: names are unique, /help comes from the declarations, and a failing command never throws.
import { expect } from 'chai'
import { CommandRegistry } from '../commands'
import type { Command, CommandOutput } from '../types'
import { thrown } from './support'

/** A CommandOutput that records what a command printed. */
function output(): CommandOutput & { infos: string[]; errors: string[] } {
  const infos: string[] = []
  const errors: string[] = []
  return { infos, errors, info: (text) => void infos.push(text), error: (text) => void errors.push(text) }
}

function command(name: string, extra: Partial<Command> = {}): Command & { calls: string[] } {
  const calls: string[] = []
  return { name, usage: `/${name}`, description: `does ${name}`, calls, run: (args) => void calls.push(args), ...extra }
}

describe('core/commands CommandRegistry', () => {
  it('runs a command by name or alias with its trimmed arguments', async () => {
    const registry = new CommandRegistry()
    const msg = command('msg', { aliases: ['m', 'tell'] })
    registry.register(msg)
    const out = output()
    await registry.run('/msg bob   hello there  ', out)
    await registry.run('  /m alice hi', out)
    await registry.run('/tell carol', out)
    await registry.run('/msg', out)
    expect(msg.calls).to.deep.equal(['bob   hello there', 'alice hi', 'carol', ''])
    expect(out.errors).to.deep.equal([])
  })

  it('keeps arguments that span lines', async () => {
    const registry = new CommandRegistry()
    const msg = command('msg')
    registry.register(msg)
    await registry.run('/msg bob line one\nline two', output())
    expect(msg.calls).to.deep.equal(['bob line one\nline two'])
  })

  it('matches names regardless of case', async () => {
    const registry = new CommandRegistry()
    const trust = command('Trust', { aliases: ['T'] })
    registry.register(trust)
    const out = output()
    await registry.run('/trust bob', out)
    await registry.run('/TRUST carol', out)
    await registry.run('/t dave', out)
    expect(trust.calls).to.deep.equal(['bob', 'carol', 'dave'])
    expect(registry.get('TRUST')).to.equal(trust)
    expect(out.errors).to.deep.equal([])
  })

  it('throws when a name or alias is taken, by a name or an alias, and then registers none of the new keys', () => {
    const registry = new CommandRegistry()
    registry.register(command('msg', { aliases: ['m'] }))
    expect(thrown(() => registry.register(command('msg'))).message).to.equal('command /msg is already registered')
    expect(thrown(() => registry.register(command('m'))).message).to.equal('command /m is already registered')
    expect(thrown(() => registry.register(command('query', { aliases: ['q', 'msg'] }))).message).to.equal(
      'command /msg is already registered',
    )
    expect(thrown(() => registry.register(command('MSG'))).message).to.equal('command /msg is already registered')
    expect(registry.get('query')).to.equal(undefined)
    expect(registry.get('q')).to.equal(undefined)
    expect(registry.list().map((c) => c.name)).to.deep.equal(['msg'])
  })

  it('lists each command once, sorted by name, and /help prints usage and description', () => {
    const registry = new CommandRegistry()
    for (const name of ['trust', 'help', 'msg', 'fingerprint'])
      registry.register(command(name, { aliases: [`${name}-alias`] }))
    expect(registry.list().map((c) => c.name)).to.deep.equal(['fingerprint', 'help', 'msg', 'trust'])
    const help = registry.help()
    expect(help).to.have.length(4)
    expect(help[0]).to.equal(`${'/fingerprint'.padEnd(24)} does fingerprint`)
    expect(help.map((line) => line.split(/\s+/)[0])).to.deep.equal(['/fingerprint', '/help', '/msg', '/trust'])
  })

  it('reports an unknown command and a line that is not a command to the output', async () => {
    const registry = new CommandRegistry()
    registry.register(command('msg'))
    const out = output()
    await registry.run('/nope now', out)
    await registry.run('hello', out)
    await registry.run('/', out)
    expect(out.errors).to.deep.equal([
      'unknown command /nope; /help lists the commands',
      'a command starts with /, e.g. /help',
      'a command starts with /, e.g. /help',
    ])
  })

  it('reports a command that throws or rejects to the output, never to the caller', async () => {
    const registry = new CommandRegistry()
    registry.register(
      command('sync', {
        run: () => {
          throw new Error('no such peer')
        },
      }),
    )
    registry.register(
      command('async', {
        aliases: ['a'],
        run: async () => {
          throw new Error('timed out')
        },
      }),
    )
    registry.register(
      command('odd', {
        run: () => {
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- a plugin may throw anything; that is the case tested
          throw 'a string'
        },
      }),
    )
    const out = output()
    await registry.run('/sync bob', out)
    await registry.run('/a', out)
    await registry.run('/odd', out)
    expect(out.errors).to.deep.equal(['/sync: no such peer', '/async: timed out', '/odd: a string'])
  })

  it('lets a command print through the output it is given', async () => {
    const registry = new CommandRegistry()
    registry.register(command('echo', { run: (args, ui) => ui.info(`echo: ${args}`) }))
    const out = output()
    await registry.run('/echo hi', out)
    expect(out.infos).to.deep.equal(['echo: hi'])
  })
})
