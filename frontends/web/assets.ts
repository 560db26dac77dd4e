// The renderer's files and the headers they are served with, shared by the web server and Electron's protocol handler.
import * as fs from 'node:fs'
import * as path from 'node:path'

/** The Content-Security-Policy of every response: scripts, styles and connections from this origin only, nothing inline. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

export const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  // The secret is in every URL: never send it anywhere in a Referer.
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
}

/** The renderer's files: the page and stylesheet from the source folder, the script as tsc compiled it. */
export const RENDERER_FILES: Record<string, { type: string; file: () => string }> = {
  '': { type: 'text/html; charset=utf-8', file: () => rendererSource('index.html') },
  'style.css': { type: 'text/css; charset=utf-8', file: () => rendererSource('style.css') },
  'app.js': { type: 'text/javascript; charset=utf-8', file: () => path.join(__dirname, 'renderer', 'app.js') },
}

/** HTML and CSS are not compiled: found beside the TypeScript, from dist/ or from the source tree. */
function rendererSource(name: string): string {
  const candidates = [
    path.join(__dirname, 'renderer', name),
    path.join(__dirname, '..', '..', '..', 'frontends', 'web', 'renderer', name),
  ]
  return candidates.find((file) => fs.existsSync(file)) ?? candidates[0]
}
