// The Standard Schema v1 interface, which zod (>= 3.24), valibot (>= 1) and others implement, so plugin options can be
// checked with the validator an author already knows. Copied from the spec (https://standardschema.dev,
// github.com/standard-schema/standard-schema, MIT licence) instead of depending on @standard-schema/spec: it is types only.

/** The Standard Schema interface. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly '~standard': StandardSchemaV1.Props<Input, Output>
}

// eslint-disable-next-line @typescript-eslint/no-namespace -- the spec's own shape, so its types read the same here
export declare namespace StandardSchemaV1 {
  /** The Standard Schema properties interface. */
  export interface Props<Input = unknown, Output = Input> {
    /** The version number of the standard. */
    readonly version: 1
    /** The vendor name of the schema library. */
    readonly vendor: string
    /** Validates unknown input values. */
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>
    /** Inferred types associated with the schema. */
    readonly types?: Types<Input, Output> | undefined
  }

  /** The result interface of the validate function. */
  export type Result<Output> = SuccessResult<Output> | FailureResult

  /** The result interface if validation succeeds. */
  export interface SuccessResult<Output> {
    /** The typed output value. */
    readonly value: Output
    /** The non-existent issues. */
    readonly issues?: undefined
  }

  /** The result interface if validation fails. */
  export interface FailureResult {
    /** The issues of failed validation. */
    readonly issues: ReadonlyArray<Issue>
  }

  /** The issue interface of the failure output. */
  export interface Issue {
    /** The error message of the issue. */
    readonly message: string
    /** The path of the issue, if any. */
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined
  }

  /** The path segment interface of the issue. */
  export interface PathSegment {
    /** The key representing a path segment. */
    readonly key: PropertyKey
  }

  /** The Standard Schema types interface. */
  export interface Types<Input = unknown, Output = Input> {
    /** The input type of the schema. */
    readonly input: Input
    /** The output type of the schema. */
    readonly output: Output
  }

  /** Infers the input type of a Standard Schema. */
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input']

  /** Infers the output type of a Standard Schema. */
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output']
}

/** True for a Standard Schema object (a zod or valibot schema), as opposed to udsu's own check function. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null | undefined)?.['~standard']
  return typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function'
}

/** Runs a Standard Schema synchronously; its issues become problems in udsu's form, each naming its key. */
export function validateStandard<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
): { value: T } | { problems: string[] } {
  const result = schema['~standard'].validate(value)
  if (isPromise(result)) {
    // A rejected promise we never look at would otherwise surface as an unhandled rejection.
    result.catch(() => undefined)
    return {
      problems: [
        `the value is checked by an asynchronous ${schema['~standard'].vendor} schema; udsu checks options synchronously (drop async refinements)`,
      ],
    }
  }
  if (result.issues)
    return { problems: result.issues.length ? result.issues.map(describeIssue) : ['the value is invalid'] }
  return { value: (result as StandardSchemaV1.SuccessResult<T>).value }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function'
}

/** `key.list[0] must be …`: udsu's own phrasing (a lower-case message) follows the key; a library's sentence follows a colon. */
function describeIssue(issue: StandardSchemaV1.Issue): string {
  const key = (issue.path ?? [])
    .map((segment) => (typeof segment === 'object' && segment !== null ? segment.key : segment))
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('')
  if (!key)
    return /^[a-z]/.test(issue.message) ? `the value ${issue.message}` : `the value is invalid: ${issue.message}`
  return /^[a-z]/.test(issue.message) ? `${key} ${issue.message}` : `${key}: ${issue.message}`
}
