// The Prometheus endpoint (`--metrics HOST:PORT`, GET /metrics): the server's counters, read from `stats` at each scrape
// (nothing is added to the datagram path), and the process metrics prom-client collects.
import * as http from 'node:http'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { Endpoint } from '../core/types'
import type { RendezvousServer, ServerStats } from './index'

/** Why datagrams were dropped, as the `reason` label of udsu_server_dropped_total. */
const DROP_REASONS: Record<string, keyof ServerStats> = {
  malformed: 'malformed',
  unregistered: 'unregistered',
  relay_refused: 'relayRefused',
  rate_limited: 'limited',
  amplification: 'unsent',
}

export function serverMetrics(server: RendezvousServer): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // A counter that mirrors a running total: set at each scrape from the server's own count.
  const mirror = (name: string, help: string, read: (stats: ServerStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(read(server.stats))
      },
    })
  new Gauge({
    name: 'udsu_server_registered_clients',
    help: 'Clients registered now',
    registers: [registry],
    collect() {
      this.set(server.online)
    },
  })
  mirror('udsu_server_datagrams_received_total', 'Datagrams received on the main port', (s) => s.received)
  mirror(
    'udsu_server_registrations_total',
    'Registrations completed (cookie, then proof of key)',
    (s) => s.registrations,
  )
  mirror('udsu_server_introductions_total', 'Introductions of two clients to each other', (s) => s.introductions)
  mirror('udsu_server_relayed_frames_total', 'RELAY frames forwarded', (s) => s.relayed)
  mirror('udsu_server_relayed_bytes_total', 'Bytes of RELAY frames forwarded', (s) => s.relayedBytes)
  mirror('udsu_server_mappings_total', 'NAT detection requests answered on the second port', (s) => s.mappings)
  mirror(
    'udsu_server_rate_limited_total',
    'Datagrams and registration steps refused by the per-address rate limits',
    (s) => s.limited,
  )
  if (server.redis) {
    new Gauge({
      name: 'udsu_server_redis_up',
      help: 'Whether Redis answers this instance (1) or not (0: it serves its own clients alone)',
      registers: [registry],
      collect() {
        this.set(server.redis?.up ? 1 : 0)
      },
    })
    const shared = (name: string, help: string, read: (r: NonNullable<RendezvousServer['redis']>) => number) =>
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset()
          this.inc(server.redis ? read(server.redis) : 0)
        },
      })
    shared(
      'udsu_server_forwarded_total',
      'Introductions, relay notices and relayed frames sent to other instances through Redis',
      (r) => r.forwarded,
    )
    shared(
      'udsu_server_forward_dropped_total',
      'Messages for other instances dropped (Redis unreachable, too many in flight, or malformed)',
      (r) => r.forwardDropped,
    )
  }
  new Counter({
    name: 'udsu_server_dropped_total',
    help: 'Datagrams dropped or left unanswered, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [reason, key] of Object.entries(DROP_REASONS)) this.inc({ reason }, server.stats[key])
    },
  })
  return registry
}

/** Serves `/metrics` on HOST:PORT; resolves once listening, rejects when it cannot (the port is taken). */
export async function serveMetrics(
  server: RendezvousServer,
  at: { host: string; port: number },
): Promise<{ address: Endpoint; close(): Promise<void> }> {
  const registry = serverMetrics(server)
  const listener = http.createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('udsu server: metrics are at /metrics\n')
      return
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject)
    listener.listen(at.port, at.host, () => {
      listener.off('error', reject)
      resolve()
    })
  })
  const bound = listener.address() as { address: string; port: number }
  return {
    address: { address: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        listener.closeAllConnections()
        listener.close(() => resolve())
      }),
  }
}
