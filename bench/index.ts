// `npm run bench`: runs every benchmark and prints its table. Not a test: figures depend on the machine.
import { benchReliable, formatRows } from './reliable'

async function main(): Promise<void> {
  console.log('reliable delivery: two processes on loopback, raw node:dgram against the full pipeline\n')
  console.log(formatRows(await benchReliable()))
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error)
    process.exit(1)
  },
)
