// The observe-only hooks every frontend shows, as one stream of typed events: a frontend maps events, not hooks.
import type { Hooks } from './hooks'
import type { ChatMessage, Identity, MessageStateChange, Notice, PathKind, Problem, ServerState } from './types'

export type FrontendEvent =
  | { type: 'ready'; identity: Identity }
  | { type: 'server'; state: ServerState }
  | { type: 'peerDiscovered'; peer: string; online: boolean }
  | { type: 'peerConnected'; peer: string; path: PathKind }
  | { type: 'peerLost'; peer: string; reason: string }
  | { type: 'messageState'; change: MessageStateChange }
  | { type: 'deliver'; message: ChatMessage }
  | { type: 'problem'; problem: Problem }
  | { type: 'notice'; notice: Notice }

/**
 * Taps the observe-only hooks under `name` and hands each as an event to `on`. A `deliver` event is acknowledged only once
 * the promise `on` returns for it settles, so a frontend that must show a message before it counts as delivered can.
 */
export function observeFrontendEvents(
  hooks: Hooks,
  name: string,
  on: (event: FrontendEvent) => void | Promise<void>,
): void {
  hooks.ready.tap(name, (identity) => void on({ type: 'ready', identity }))
  hooks.server.tap(name, (state) => void on({ type: 'server', state }))
  hooks.peerDiscovered.tap(name, ({ name: peer, online }) => void on({ type: 'peerDiscovered', peer, online }))
  hooks.peerConnected.tap(name, (peer, path) => void on({ type: 'peerConnected', peer, path }))
  hooks.peerLost.tap(name, (peer, reason) => void on({ type: 'peerLost', peer, reason }))
  hooks.messageState.tap(name, (change) => void on({ type: 'messageState', change }))
  hooks.deliver.tapPromise(name, async (message) => on({ type: 'deliver', message }))
  hooks.problem.tap(name, (problem) => void on({ type: 'problem', problem }))
  hooks.notice.tap(name, (notice) => void on({ type: 'notice', notice }))
}
