// The plugin on its hooks, in process: stored before the frontends' deliver taps, a duplicate stopped for them, own
// messages followed through their states, and those an earlier run left pending without an outbox marked failed.
import { expect } from 'chai'
import * as path from 'node:path'
import { CommandRegistry } from '../../../core/commands'
import { createHooks } from '../../../core/hooks'
import { createLogger } from '../../../core/log'
import { Profile } from '../../../core/profile'
import { ServiceRegistry } from '../../../core/services'
import type { ChatMessage, LocalUser, MessageStateChange } from '../../../core/types'
import history from '../index'
import { HISTORY_FILE, SqliteHistoryStore } from '../store'
import { cleanupProfiles, tempProfile } from './support'

const me: LocalUser = { name: 'alice', publicKey: '', fingerprint: '', sign: () => Buffer.alloc(0) }

/** The plugin with real hooks and a profile, and a "frontend" tap after it that records what it was shown. */
async function startPlugin(dir: string) {
  const hooks = createHooks()
  const services = new ServiceRegistry()
  const deps = {
    hooks,
    logger: createLogger('silent'),
    profile: new Profile(dir),
    services,
    commands: new CommandRegistry(),
    me,
  }
  history.create(deps, { maxImportMiB: 1 })
  const shown: ChatMessage[] = []
  const states: MessageStateChange[] = []
  hooks.deliver.tapPromise('frontend', async (message) => {
    // Stored before it is shown.
    expect(await services.get('history')?.count(message.from)).to.be.above(0)
    shown.push(message)
  })
  hooks.messageState.tap('frontend', (change) => states.push(change))
  await hooks.init.promise()
  return { hooks, service: services.get('history'), shown, states }
}

describe('history plugin on the hooks', () => {
  after(cleanupProfiles)

  it('stores a received message before frontends see it, and stops one it already has', async () => {
    const dir = tempProfile()
    const { hooks, service, shown } = await startPlugin(dir)
    const message: ChatMessage = { id: 'aa01', from: 'bob', to: 'alice', text: 'hi', ts: 1 }
    await hooks.deliver.promise(message)
    await hooks.deliver.promise({ ...message }) // handed over again, as after a crash
    expect(shown.map((m) => m.id)).to.deep.equal(['aa01'])
    expect((await service?.page('bob'))?.map((m) => [m.text, m.out])).to.deep.equal([['hi', false]])
    expect((await service?.conversations())?.[0]).to.include({ peer: 'bob', unread: 1 })
    await hooks.stop.promise()
  })

  it("follows one's own message from accepted to delivered", async () => {
    const { hooks, service } = await startPlugin(tempProfile())
    hooks.accepted.call({ id: 'bb01', from: 'alice', to: 'bob', text: 'mine', ts: 2 })
    expect((await service?.page('bob'))?.[0]).to.include({ out: true, state: 'pending', text: 'mine' })
    hooks.messageState.call({ id: 'bb01', to: 'bob', state: 'sent' })
    hooks.messageState.call({ id: 'bb01', to: 'bob', state: 'delivered' })
    expect((await service?.page('bob'))?.[0].state).to.equal('delivered')
    await hooks.stop.promise()
  })

  it('exports through the service and imports into another profile: the same conversation, twice adds nothing, a bad file changes nothing', async () => {
    const source = await startPlugin(tempProfile())
    await source.hooks.deliver.promise({ id: 'dd01', from: 'bob', to: 'alice', text: 'привет <b>', ts: 5 })
    source.hooks.accepted.call({ id: 'dd02', from: 'alice', to: 'bob', text: 'hi 👋', ts: 6 })
    const json = await source.service!.exportText({ peer: 'bob', format: 'json' })
    expect(await source.service!.exportText({ format: 'html' }))
      .to.include('привет &lt;b&gt;')
      .and.not.include('привет <b>')
    const target = await startPlugin(tempProfile())
    expect(await target.service!.importText(json)).to.deep.equal({ added: 2, skipped: 0, refused: 0 })
    expect(await target.service!.importText(json)).to.deep.equal({ added: 0, skipped: 2, refused: 0 })
    expect((await target.service!.page('bob')).map((m) => [m.text, m.out])).to.deep.equal([
      ['привет <b>', false],
      ['hi 👋', true],
    ])
    let refusal: Error | undefined
    await target
      .service!.importText(json.slice(0, json.length / 2), { file: 'half.json' })
      .catch((error: Error) => (refusal = error))
    expect(refusal?.message).to.match(/half\.json cannot be imported, nothing was changed/)
    expect(await target.service!.count('bob')).to.equal(2)
    await source.hooks.stop.promise()
    await target.hooks.stop.promise()
  })

  it('marks failed the own messages an earlier run left pending that no outbox reports again', async () => {
    const dir = tempProfile()
    const earlier = new SqliteHistoryStore(path.join(dir, HISTORY_FILE))
    earlier.setOwner('alice')
    for (const id of ['cc01', 'cc02'])
      earlier.append({
        id,
        from: 'alice',
        to: 'bob',
        text: id,
        ts: 3,
        peer: 'bob',
        out: true,
        state: 'pending',
        storedAt: 3,
      })
    earlier.close()
    const { hooks, service, states } = await startPlugin(dir)
    hooks.messageState.call({ id: 'cc02', to: 'bob', state: 'pending' }) // the delivery plugin's restored outbox
    hooks.ready.call({ name: 'alice', fingerprint: '' })
    expect(states.filter((s) => s.state === 'failed').map((s) => [s.id, s.reason])).to.deep.equal([
      ['cc01', 'it had not left when udsu last stopped; send it again'],
    ])
    expect((await service?.page('bob'))?.map((m) => [m.id, m.state])).to.deep.equal([
      ['cc01', 'failed'],
      ['cc02', 'pending'],
    ])
    await hooks.stop.promise()
  })
})
