// Helpers for journey tests: write a message and time it to its receipt, and make a conversation quiet.
import { expect } from 'chai'
import type { HeadlessClient } from '../support/processes'

/** Sends a message and resolves with the ms from writing to the `delivered` receipt, once the receiver showed it. */
export async function deliver(
  from: HeadlessClient,
  to: HeadlessClient,
  text: string,
  timeoutMs = 15_000,
): Promise<number> {
  const mark = from.lines.length
  const started = Date.now()
  from.send({ type: 'send', to: to.name, text })
  const pending = await from.waitFor(
    (e) => e.type === 'pending' && e.to === to.name,
    `${from.name}'s "${text}" to be accepted`,
    timeoutMs,
    mark,
  )
  await to.message(text, timeoutMs)
  await from.waitFor(
    (e) => e.type === 'delivered' && e.id === pending.id,
    `${from.name}'s "${text}" to be delivered`,
    timeoutMs,
    mark,
  )
  return Date.now() - started
}

/** Both write and every receipt comes back: nothing is in flight, as in a conversation that went quiet. */
export async function quiet(a: HeadlessClient, b: HeadlessClient): Promise<void> {
  await deliver(a, b, `hi ${b.name}`)
  await deliver(b, a, `hi ${a.name}`)
}

/** Prints a measured time beside the test (the closing note quotes them) and returns it. */
export function figure(what: string, ms: number): number {
  console.log(`      ${what}: ${ms} ms`)
  return ms
}

export function expectDelivered(ms: number, withinMs: number): void {
  expect(ms, `delivered after ${ms} ms`).to.be.below(withinMs)
}
