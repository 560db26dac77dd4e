// Checks the start window's settings before the client starts, so a bad name or address, or a server that does not
// answer, is shown under its field instead of stopping the client.
import * as dgram from 'node:dgram'
import { lookup } from 'node:dns/promises'
import * as os from 'node:os'
import { randomBytes } from 'node:crypto'
import { NAME_HINT, NAME_PATTERN, type Settings } from '../../core'
import { decodeFrame, decodeJson, encodeJson, FrameKind, HELLO_PAD, parseHostPort } from '../../protocol'
import type { StartProblems } from './bridge'

/** How long each of the two `hello`s waits for the server's answer. */
const PROBE_MS = 1500

/** The problems of what was typed; an empty object when the client may start with it. */
export async function checkSettings(settings: Settings): Promise<StartProblems> {
  const problems: StartProblems = {}
  if (!settings.name) problems.name = 'A name is needed.'
  else if (!NAME_PATTERN.test(settings.name)) problems.name = `The name ${NAME_HINT}.`
  let target: { address: string; port: number }
  try {
    const { host, port } = parseHostPort(settings.server)
    const address =
      host === 'localhost' ? '127.0.0.1' : (await lookup(host, { family: 4 }).catch(() => undefined))?.address
    if (!address) return { ...problems, server: `Bad address: no host "${host}" was found.` }
    target = { address, port }
  } catch (error) {
    return { ...problems, server: `Bad address: ${(error as Error).message}.` }
  }
  // On this machine a client starts a server itself when none answers (hole-punch's embedded server).
  if (!isThisMachine(target.address) && !(await answers(target))) {
    problems.server = `The server is unreachable: no rendezvous server answers at ${settings.server}.`
  }
  return problems
}

function isThisMachine(address: string): boolean {
  if (address.startsWith('127.') || address === '0.0.0.0') return true
  return Object.values(os.networkInterfaces())
    .flat()
    .some((i) => i?.address === address)
}

/** Sends a registration's first step (`hello`, which stores nothing on the server) and waits for any answer. */
function answers(target: { address: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4')
    const rid = randomBytes(8).toString('hex')
    let tries = 0
    let timer: NodeJS.Timeout | undefined
    const finish = (answered: boolean) => {
      clearTimeout(timer)
      socket.close()
      resolve(answered)
    }
    const hello = () => {
      if (tries++ >= 2) return finish(false)
      socket.send(encodeJson(FrameKind.Server, { t: 'hello', rid, pad: HELLO_PAD }), target.port, target.address)
      timer = setTimeout(hello, PROBE_MS)
    }
    socket.on('message', (bytes) => {
      const frame = decodeFrame(bytes)
      if (frame?.kind === FrameKind.Server && decodeJson(frame.body)?.rid === rid) finish(true)
    })
    socket.on('error', () => finish(false))
    socket.bind(0, hello)
  })
}
