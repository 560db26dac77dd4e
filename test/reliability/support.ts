// Shared by the reliability tests: clients with reliable delivery on, bursts of numbered messages, and their checks.
import { expect } from 'chai'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import * as path from 'node:path'
import type { LabHost } from '../lab/lab'
import { CLI, fixtureProfile, HeadlessClient, ServerProcess, writeConfig, type Event } from '../support/processes'

/** The full pipeline with reliable delivery; short keepalive and retry so that a lost peer is noticed in seconds. */
export function reliableConfig(keepaliveMs = 500): string {
  return writeConfig({
    plugins: [
      'udp',
      { resolve: 'hole-punch', options: { embeddedServer: false, keepaliveMs } },
      'rsa',
      { resolve: 'reliable', options: { retryMaxMs: 1000 } },
    ],
  })
}

const LOSS_TAG = 'udsu-reliable-loss'

/**
 * Drops each datagram arriving at the host with probability `p` (iptables statistic DROP on INPUT, not lo): set on
 * both hosts, each datagram between them is lost with probability p. Not `host.setLoss`, which also drops on OUTPUT,
 * where the kernel fails the sender's sendmsg with EPERM: the sender learns of the loss, which a real network never
 * tells, and hole-punch reports each one as a plugin failure.
 */
export async function setInputLoss(host: LabHost, p: number): Promise<void> {
  const rules = await host.exec('iptables-save', ['-t', 'filter'])
  for (const line of rules.split('\n').filter((l) => l.includes(LOSS_TAG))) {
    await host.exec('iptables', [
      '-t',
      'filter',
      ...line.replace(/^-A /, '-D ').split(' ').filter(Boolean).map(unquote),
    ])
  }
  if (p > 0) {
    await host.exec('iptables', [
      '-A',
      'INPUT',
      '!',
      '-i',
      'lo',
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      String(p),
      '-m',
      'comment',
      '--comment',
      LOSS_TAG,
      '-j',
      'DROP',
    ])
  }
}

/** Datagrams dropped by `setInputLoss` since it was last set. */
export async function inputLossDrops(host: LabHost): Promise<number> {
  const rules = await host.exec('iptables-save', ['-c', '-t', 'filter'])
  const line = rules.split('\n').find((l) => l.includes(LOSS_TAG))
  return line ? Number(/^\[(\d+):/.exec(line)?.[1] ?? 0) : 0
}

function unquote(word: string): string {
  return word.replace(/^"(.*)"$/, '$1')
}

/** A rendezvous server in a lab host, listening on all its addresses. */
export async function labServer(host: LabHost): Promise<string> {
  const child = host.spawn(
    process.execPath,
    [CLI, 'server', '--host', '0.0.0.0', '--port', '7777', '--log-level', 'warn'],
    { stdio: 'pipe' },
  )
  const server = new ServerProcess(child as ChildProcessWithoutNullStreams, (line) => line)
  await server.waitFor((line) => line.startsWith('udsu server listening on udp '), 'the lab server to listen')
  return `${host.ip}:7777`
}

/** A headless client in a lab host. Logs at info: the reliable plugin's link stats are printed at stop. */
export async function labClient(host: LabHost, name: string, server: string, config: string): Promise<HeadlessClient> {
  const profile = fixtureProfile(name)
  const args = [
    CLI,
    'chat',
    '--frontend',
    'headless',
    '--name',
    name,
    '--server',
    server,
    '--profile',
    profile,
    '--config',
    config,
    '--log-level',
    'info',
  ]
  const child = host.spawn(process.execPath, args, { cwd: path.dirname(profile), stdio: 'pipe' })
  const client = new HeadlessClient(child as ChildProcessWithoutNullStreams, name, profile)
  await client.waitFor((e) => e.type === 'ready', `${name} to be ready`)
  return client
}

/** Texts `tag 0` … `tag n-1`. */
export function numbered(tag: string, count: number, from = 0): string[] {
  return Array.from({ length: count - from }, (_, i) => `${tag} ${from + i}`)
}

/** Writes every send command at once: the headless client reads them as fast as the pipe delivers. */
export function sendAll(from: HeadlessClient, to: string, texts: readonly string[]): void {
  from.child.stdin.write(texts.map((text) => JSON.stringify({ type: 'send', to, text })).join('\n') + '\n')
}

/** Chat messages from `peer` whose text starts with `tag `, in arrival order. */
export function received(client: HeadlessClient, peer: string, tag: string): Event[] {
  return client.lines.filter((e) => e.type === 'message' && e.from === peer && String(e.text).startsWith(`${tag} `))
}

/** The ids of one's own messages to `peer` in the given state, in event order. */
export function stateIds(client: HeadlessClient, state: string, peer: string): string[] {
  return client.lines.filter((e) => e.type === state && e.to === peer).map((e) => String(e.id))
}

/** Waits until the last of `texts` arrived (delivery is in order, so the rest is checked after). */
export async function waitForLast(client: HeadlessClient, texts: readonly string[], timeoutMs: number): Promise<void> {
  await client.message(texts[texts.length - 1], timeoutMs)
}

/**
 * Waits until `count` lines match `match`, counting each line once. Cheap per line on purpose: a reader that scans all
 * lines for every new one falls behind a fast client, its stdout pipe fills, and what the client wrote is held in its
 * own memory, where a SIGKILL loses it.
 */
export function waitForCount(
  client: HeadlessClient,
  match: (e: Event) => boolean,
  count: number,
  what: string,
  timeoutMs = 30_000,
): Promise<unknown> {
  let index = 0
  let matched = 0
  return client.waitFor(
    () => {
      for (; index < client.lines.length && matched < count; index++) if (match(client.lines[index])) matched++
      return matched >= count
    },
    what,
    timeoutMs,
    Math.max(0, client.lines.length - 1), // at least one line, so that a count already reached is seen at once
  )
}

/** Exactly `texts`, each once, in order. */
export function expectExactlyInOrder(got: Event[], texts: readonly string[]): void {
  const texts_ = got.map((e) => String(e.text))
  const ids = got.map((e) => String(e.id))
  expect(new Set(ids).size, 'no message id twice').to.equal(ids.length)
  expect(texts_.length, 'message count').to.equal(texts.length)
  expect(texts_).to.deep.equal(texts)
}

/** The stats the reliable plugin logs at stop for its link to `peer`. */
export function linkStats(client: HeadlessClient, peer: string): Record<string, number> | undefined {
  for (const line of client.stderr) {
    const match = /link stats (\{.*\})$/.exec(line)
    if (!match) continue
    const stats = JSON.parse(match[1]) as Record<string, number> & { peer: string }
    if (stats.peer === peer) return stats
  }
  return undefined
}
