// The one way tests wait for something to arrive (a line from a process, a datagram on a socket): check now, check again
// each time the source says something new came, give up after a timeout or as soon as it can never come.

/** What a source of arrivals keeps: each callback runs after every arrival. */
export type Arrivals = Set<() => void>

export interface WaitOptions {
  timeoutMs: number
  /** The error message on timeout (called then, so it can show what did arrive). */
  timedOut: () => string
  /** Why it can never come now (the process exited), checked with each arrival; undefined while it still can. */
  gone?: () => string | undefined
}

/** Resolves with the first value `find` returns that is not undefined, checked now and after each arrival. */
export function waitUntil<T>(arrivals: Arrivals, find: () => T | undefined, options: WaitOptions): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = find()
      if (found !== undefined) return finish(() => resolve(found))
      const why = options.gone?.()
      if (why !== undefined) finish(() => reject(new Error(why)))
    }
    const timer = setTimeout(() => finish(() => reject(new Error(options.timedOut()))), options.timeoutMs)
    const finish = (settle: () => void) => {
      clearTimeout(timer)
      arrivals.delete(check)
      settle()
    }
    arrivals.add(check)
    check()
  })
}
