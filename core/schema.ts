// A tiny validator for config and plugin options: it collects every problem at once, each naming its key.

/** Checks a value at `path`; pushes problems and returns the (defaulted) value, or undefined when invalid. */
export type Check<T> = (value: unknown, path: string, problems: string[]) => T | undefined

export type Infer<C> = C extends Check<infer T> ? T : never

const describe = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'a list'
      : typeof value === 'string'
        ? JSON.stringify(value)
        : typeof value

export function string(options: { pattern?: RegExp; hint?: string; maxLength?: number } = {}): Check<string> {
  return (value, path, problems) => {
    if (typeof value !== 'string') return void problems.push(`${path} must be a string, not ${describe(value)}`)
    if (options.maxLength !== undefined && value.length > options.maxLength)
      return void problems.push(`${path} must be at most ${options.maxLength} characters`)
    if (options.pattern && !options.pattern.test(value))
      return void problems.push(
        `${path} ${options.hint ?? `must match ${options.pattern}`}, not ${JSON.stringify(value)}`,
      )
    return value
  }
}

export function number(options: { min?: number; max?: number; integer?: boolean } = {}): Check<number> {
  return (value, path, problems) => {
    if (typeof value !== 'number' || !Number.isFinite(value))
      return void problems.push(`${path} must be a number, not ${describe(value)}`)
    if (options.integer && !Number.isInteger(value)) return void problems.push(`${path} must be a whole number`)
    if (options.min !== undefined && value < options.min)
      return void problems.push(`${path} must be at least ${options.min}`)
    if (options.max !== undefined && value > options.max)
      return void problems.push(`${path} must be at most ${options.max}`)
    return value
  }
}

export function boolean(): Check<boolean> {
  return (value, path, problems) =>
    typeof value === 'boolean' ? value : void problems.push(`${path} must be true or false, not ${describe(value)}`)
}

export function oneOf<T extends string | number>(values: readonly T[]): Check<T> {
  return (value, path, problems) => {
    if ((typeof value === 'string' || typeof value === 'number') && (values as readonly unknown[]).includes(value))
      return value as T
    const words = values.filter((v): v is T & string => typeof v === 'string')
    const near = typeof value === 'string' ? nearest(value, words) : undefined
    // A wrong number is shown as itself: "not 8192" says more than "not number".
    const given =
      typeof value === 'number' && values.some((v) => typeof v === 'number') ? String(value) : describe(value)
    problems.push(
      `${path} must be one of ${values.join(', ')}, not ${given}${near ? ` (did you mean "${near}"?)` : ''}`,
    )
  }
}

export function list<T>(item: Check<T>, options: { maxItems?: number } = {}): Check<T[]> {
  return (value, path, problems) => {
    if (!Array.isArray(value)) return void problems.push(`${path} must be a list, not ${describe(value)}`)
    if (options.maxItems !== undefined && value.length > options.maxItems)
      return void problems.push(`${path} may hold at most ${options.maxItems} entries`)
    const before = problems.length
    const out = value.map((entry, i) => item(entry, `${path}[${i}]`, problems))
    return problems.length === before ? (out as T[]) : undefined
  }
}

/** Either of two shapes; the problems reported are those of the shape the value looks closest to. */
export function either<A, B>(a: Check<A>, b: Check<B>, pick: (value: unknown) => 'a' | 'b'): Check<A | B> {
  return (value, path, problems) => (pick(value) === 'a' ? a(value, path, problems) : b(value, path, problems))
}

/** A value that may be absent; absent gives `fallback`. */
export function optional<T>(check: Check<T>): Check<T | undefined>
export function optional<T>(check: Check<T>, fallback: T): Check<T>
export function optional<T>(check: Check<T>, fallback?: T): Check<T | undefined> {
  return (value, path, problems) => (value === undefined ? fallback : check(value, path, problems))
}

type Shape = Record<string, Check<unknown>>
export type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> }

/** An object with known keys; an unknown key is a problem, with the nearest known key suggested. */
export function object<S extends Shape>(shape: S): Check<ObjectOf<S>> {
  return (value, path, problems) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return void problems.push(`${path || 'the value'} must be an object, not ${describe(value)}`)
    const before = problems.length
    const record = value as Record<string, unknown>
    const known = Object.keys(shape)
    for (const key of Object.keys(record)) {
      if (!(key in shape)) {
        const near = nearest(key, known)
        problems.push(`${join(path, key)} is not a known option${near ? ` (did you mean "${near}"?)` : ''}`)
      }
    }
    const out: Record<string, unknown> = {}
    for (const key of known) out[key] = shape[key](record[key], join(path, key), problems)
    return problems.length === before ? (out as ObjectOf<S>) : undefined
  }
}

/** Runs a check on a whole value. */
export function validate<T>(check: Check<T>, value: unknown, path = ''): { value: T } | { problems: string[] } {
  const problems: string[] = []
  const out = check(value, path, problems)
  return problems.length || out === undefined
    ? { problems: problems.length ? problems : ['invalid value'] }
    : { value: out }
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key)

/** The candidate within edit distance 2 of `word`, if any (for "did you mean"). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [candidate, d]
  }
  return best
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]
}
