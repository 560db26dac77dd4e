// Endpoints as the wire carries them (`{ address, port }` in rendezvous messages) and as people write them (host:port).

/**
 * `host:port`, optionally `#fingerprint` (the server key a client expects, `SHA256:…` as the server prints it) →
 * endpoint; throws a clear error for anything else.
 */
export function parseHostPort(text: string): { host: string; port: number; fingerprint?: string } {
  const match = /^\[?([^\]\s#]+?)\]?:(\d{1,5})(?:#(SHA256:[A-Za-z0-9_-]{43}))?$/.exec(text.trim())
  const port = match ? Number(match[2]) : NaN
  if (!match || port < 1 || port > 65535) throw new Error(`"${text}" is not host:port (e.g. 127.0.0.1:7777)`)
  return { host: match[1], port, ...(match[3] ? { fingerprint: match[3] } : {}) }
}

/** The rendezvous server a client uses when neither the config nor a flag names one. */
export const DEFAULT_SERVER = '127.0.0.1:7777'

/** Servers a client takes at most in its list (`--server A:P,B:P`). */
export const MAX_SERVERS = 16

/**
 * `host:port[#SHA256:…]` entries separated by commas (a client's servers, tried in order) → each parsed; throws a clear
 * error naming the bad entry, an empty one, a repeated one, or more than MAX_SERVERS.
 */
export function parseServerList(
  text: string,
): Array<{ host: string; port: number; fingerprint?: string; label: string }> {
  const entries = text.split(',').map((entry) => entry.trim())
  if (entries.length > MAX_SERVERS) throw new Error(`lists ${entries.length} servers; at most ${MAX_SERVERS}`)
  const servers = entries.map((entry, i) => {
    if (entry === '')
      throw new Error(`has an empty entry (server ${i + 1} of ${entries.length}): write HOST:PORT,HOST:PORT`)
    const parsed = parseHostPort(entry)
    return { ...parsed, label: `${parsed.host}:${parsed.port}` }
  })
  const repeated = servers.find((s, i) => servers.findIndex((o) => o.label === s.label) !== i)
  if (repeated) throw new Error(`names ${repeated.label} twice`)
  return servers
}

export function isEndpoint(value: unknown): value is { address: string; port: number } {
  const v = value as { address?: unknown; port?: unknown }
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.address === 'string' &&
    v.address.length <= 64 &&
    Number.isInteger(v.port) &&
    (v.port as number) > 0 &&
    (v.port as number) < 65536
  )
}

export const sameEndpoint = (a: { address: string; port: number }, b: { address: string; port: number }) =>
  a.address === b.address && a.port === b.port

export const formatEndpoint = (e: { address: string; port: number }) => `${e.address}:${e.port}`
