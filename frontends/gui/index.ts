// The gui frontend: the web frontend's renderer in an Electron window. This plugin runs the same bridge server as the
// web frontend (127.0.0.1, secret, Host and Origin checks) and starts the Electron binary on it, only when a user runs
// `udsu chat --frontend gui`; nothing here requires the `electron` package, which would download its binary.
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { definePlugin } from '../../core'
import { createWebFrontend, type WebDeps } from '../web'

export default definePlugin<Record<string, never>, WebDeps>({
  name: 'gui',
  provides: ['frontend'],
  create(deps) {
    let electron: ChildProcess | undefined
    const frontend = createWebFrontend(
      deps,
      { port: 0 },
      {
        name: 'gui',
        async launched(_url, server) {
          electron = launchElectron({ UDSU_BRIDGE_URL: server.socketUrl, UDSU_BRIDGE_ORIGIN: server.origin })
          // Closing the window leaves udsu, at the start window or in the chat; Electron failing says why.
          electron.once('exit', (code, signal) =>
            code === 0 || signal === 'SIGTERM'
              ? frontend.quit()
              : frontend.fail(`Electron exited with ${signal ?? `code ${code}`}`),
          )
          electron.once('error', (error) => frontend.fail(`could not start Electron: ${error.message}`))
        },
      },
    )
    deps.hooks.stop.tap({ name: 'gui', stage: 1001 }, () => {
      if (electron && electron.exitCode === null) electron.kill()
    })
  },
})

/** Where the Electron binary is: $UDSU_ELECTRON, or the one the `electron` package downloaded (read from its path.txt). */
export function findElectron(
  env: NodeJS.ProcessEnv = process.env,
  resolvePackage: (request: string) => string = require.resolve,
): string {
  if (env.UDSU_ELECTRON) return env.UDSU_ELECTRON
  let dir: string
  try {
    dir = path.dirname(resolvePackage('electron/package.json'))
  } catch {
    throw new Error(
      'the gui needs Electron: run `npm install` in udsu (electron is a dev dependency), or set UDSU_ELECTRON to an Electron binary',
    )
  }
  const pathFile = path.join(dir, 'path.txt')
  const binary = fs.existsSync(pathFile) ? path.join(dir, 'dist', fs.readFileSync(pathFile, 'utf8').trim()) : undefined
  if (!binary || !fs.existsSync(binary)) {
    throw new Error(
      'the Electron binary is not downloaded yet: run `node node_modules/electron/install.js` once (or set UDSU_ELECTRON)',
    )
  }
  return binary
}

function launchElectron(bridge: { UDSU_BRIDGE_URL: string; UDSU_BRIDGE_ORIGIN: string }): ChildProcess {
  const main = path.join(__dirname, 'main.js')
  // The bridge URL with its secret goes in the environment, which only this user can read (argv is public).
  return spawn(findElectron(), [main], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...bridge } })
}
