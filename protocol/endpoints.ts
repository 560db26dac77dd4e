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

export function isEndpoint(value: unknown): value is { address: string; port: number } {
  const v = value as { address?: unknown; port?: unknown }
  return (
    typeof v === 'object' && v !== null && typeof v.address === 'string' && v.address.length <= 64 &&
    Number.isInteger(v.port) && (v.port as number) > 0 && (v.port as number) < 65536
  )
}

export const sameEndpoint = (a: { address: string; port: number }, b: { address: string; port: number }) =>
  a.address === b.address && a.port === b.port

export const formatEndpoint = (e: { address: string; port: number }) => `${e.address}:${e.port}`
