// Plugin options checked by a Standard Schema (here real zod): the loader takes it like udsu's own check, and its issues
// become the same problems, naming the plugin and the key.
import { expect } from 'chai'
import * as path from 'node:path'
import { z } from 'zod'
import { ConfigError, DEFAULT_CONFIG, type Config } from '../config'
import { loadPlugins } from '../loader'
import { definePlugin } from '../plugin'
import { isStandardSchema, validateStandard } from '../standard-schema'
import { object } from '../schema'
import { removeTempDirs, tempDir, thrown, writeFiles } from './support'

const ZOD = require.resolve('zod')

/** A plugin module in a temp dir whose `options` is the zod schema built by `schema` (source text using `z`). */
function zodPlugin(name: string, schema: string): string {
  const dir = tempDir('udsu-standard-schema-test-')
  writeFiles(dir, {
    'plugin.js': `const { z } = require(${JSON.stringify(ZOD)})\nmodule.exports = { name: ${JSON.stringify(name)}, options: ${schema}, create() {} }\n`,
  })
  return path.join(dir, 'plugin.js')
}

const config = (resolve: string, options: unknown): Config => ({
  ...DEFAULT_CONFIG,
  frontend: 'none',
  plugins: [
    { resolve: 'udp', options: {} },
    { resolve, options },
  ],
  source: '/nowhere/udsu.config.js',
})

function problemsOf(c: Config): string[] {
  const error = thrown(() => loadPlugins(c))
  expect(error).to.be.instanceOf(ConfigError)
  return (error as ConfigError).problems
}

const LIMIT = `z.strictObject({ maxLength: z.number().int().min(1).default(500), rooms: z.array(z.string()).default([]) })`

describe('plugin options as a Standard Schema (zod)', () => {
  afterEach(removeTempDirs)

  it('passes valid options through the schema, with its defaults and transforms', () => {
    const file = zodPlugin('limit', LIMIT)
    expect(loadPlugins(config(file, { maxLength: 280 }))[1].options).to.deep.equal({ maxLength: 280, rooms: [] })
    expect(loadPlugins(config(file, {}))[1].options).to.deep.equal({ maxLength: 500, rooms: [] })
    const trimmed = zodPlugin('trim', `z.object({ nick: z.string().transform((s) => s.trim()) })`)
    expect(loadPlugins(config(trimmed, { nick: '  ann ' }))[1].options).to.deep.equal({ nick: 'ann' })
  })

  it("reports every issue under the plugin's entry, naming each key and list index", () => {
    const problems = problemsOf(config(zodPlugin('limit', LIMIT), { maxLength: 'soon', rooms: ['lobby', 7] }))
    expect(problems).to.have.length(2)
    expect(problems[0]).to.match(/^plugins\[1\] \(limit\)\.options\.maxLength: \S/)
    expect(problems[0]).to.contain('number')
    expect(problems[1]).to.match(/^plugins\[1\] \(limit\)\.options\.rooms\[1\]: \S/)
    expect(problems[1]).to.contain('string')
  })

  it("words an author's own lower-case message exactly like udsu's combinators", () => {
    const file = zodPlugin(
      'limit',
      `z.object({ maxLength: z.number({ error: 'must be a number' }).min(1, { error: 'must be at least 1' }) })`,
    )
    expect(problemsOf(config(file, { maxLength: 'soon' }))).to.deep.equal([
      'plugins[1] (limit).options.maxLength must be a number',
    ])
    expect(problemsOf(config(file, { maxLength: 0 }))).to.deep.equal([
      'plugins[1] (limit).options.maxLength must be at least 1',
    ])
  })

  it('reports an unknown key and a value of the wrong shape as a whole', () => {
    const file = zodPlugin('limit', LIMIT)
    const unknown = problemsOf(config(file, { maxLenght: 3 }))
    expect(unknown).to.have.length(1)
    expect(unknown[0]).to.match(/^plugins\[1\] \(limit\)\.options is invalid: .*maxLenght/)
    const notObject = problemsOf(config(file, 'long'))
    expect(notObject).to.have.length(1)
    expect(notObject[0]).to.match(/^plugins\[1\] \(limit\)\.options is invalid: .*object/)
  })

  it('refuses an asynchronous schema with a problem that says why, instead of loading unchecked options', () => {
    const file = zodPlugin('slow', `z.object({ n: z.number() }).refine(async () => true)`)
    const problems = problemsOf(config(file, { n: 1 }))
    expect(problems).to.have.length(1)
    expect(problems[0]).to.match(
      /^plugins\[1\] \(slow\)\.options is checked by an asynchronous zod schema; udsu checks options synchronously/,
    )
  })

  it('types the options a plugin receives from the schema', () => {
    const schema = z.object({ maxLength: z.number().default(500) })
    const plugin = definePlugin({
      name: 'typed',
      options: schema,
      create(_deps, options) {
        // A compile-time check: `options.maxLength` is a number, not unknown.
        const length: number = options.maxLength
        void length
      },
    })
    expect(isStandardSchema(plugin.options)).to.equal(true)
    expect(validateStandard(schema, {})).to.deep.equal({ value: { maxLength: 500 } })
  })

  it("tells a Standard Schema from udsu's own check function and from look-alikes", () => {
    expect(isStandardSchema(z.string())).to.equal(true)
    expect(isStandardSchema(object({}))).to.equal(false)
    expect(isStandardSchema({ '~standard': { version: 2, validate: () => ({ value: 1 }) } })).to.equal(false)
    expect(isStandardSchema(null)).to.equal(false)
  })
})
