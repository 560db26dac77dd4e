// The heap as a memory bound in a test sees it: garbage collected first, so only what is still held counts.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// Tests run with and without `node --expose-gc`: the flag is set here, and a fresh context exposes `gc` either way.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/** Bytes of heap in use after two full collections (the second picks up what the first's finalisers freed). */
export function heapUsed(): number {
  collectGarbage()
  collectGarbage()
  return process.memoryUsage().heapUsed
}
