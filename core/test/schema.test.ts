// The validator behind config and plugin options: each check's message names the key, and all problems are kept.
import { expect } from 'chai'
import {
  boolean,
  either,
  list,
  nearest,
  number,
  object,
  oneOf,
  optional,
  string,
  validate,
  type Check,
} from '../schema'

/** Runs a check at `path` and returns what it gave and the problems it found. */
function run<T>(check: Check<T>, value: unknown, path = 'opt'): { value: T | undefined; problems: string[] } {
  const problems: string[] = []
  return { value: check(value, path, problems), problems }
}

describe('core/schema', () => {
  describe('nearest', () => {
    it('suggests the candidate within two edits', () => {
      expect(nearest('sever', ['name', 'server', 'profile'])).to.equal('server')
      expect(nearest('plugin', ['plugins', 'log'])).to.equal('plugins')
      expect(nearest('lgo', ['log', 'name'])).to.equal('log')
    })

    it('ignores case but returns the candidate as spelled', () => {
      expect(nearest('KEEPALIVEMS', ['keepaliveMs'])).to.equal('keepaliveMs')
    })

    it('picks the closest of several', () => {
      expect(nearest('port', ['part', 'port', 'host'])).to.equal('port')
      expect(nearest('lvel', ['label', 'level'])).to.equal('level')
    })

    it('suggests nothing three or more edits away, or from no candidates', () => {
      expect(nearest('colour', ['server', 'name'])).to.equal(undefined)
      expect(nearest('abc', ['xyzabc'])).to.equal(undefined)
      expect(nearest('name', [])).to.equal(undefined)
    })
  })

  describe('string', () => {
    it('accepts a string and refuses anything else, saying what it got', () => {
      expect(run(string(), 'x')).to.deep.equal({ value: 'x', problems: [] })
      expect(run(string(), 5).problems).to.deep.equal(['opt must be a string, not number'])
      expect(run(string(), null).problems).to.deep.equal(['opt must be a string, not null'])
      expect(run(string(), ['a']).problems).to.deep.equal(['opt must be a string, not a list'])
    })

    it('checks the pattern, with the hint when given', () => {
      expect(run(string({ pattern: /^\d+$/, hint: 'must be digits' }), 'a1').problems).to.deep.equal([
        'opt must be digits, not "a1"',
      ])
      expect(run(string({ pattern: /^\d+$/ }), 'a1').problems).to.deep.equal(['opt must match /^\\d+$/, not "a1"'])
      expect(run(string({ pattern: /^\d+$/ }), '42').value).to.equal('42')
    })

    it('checks the length', () => {
      expect(run(string({ maxLength: 3 }), 'abcd').problems).to.deep.equal(['opt must be at most 3 characters'])
      expect(run(string({ maxLength: 3 }), 'abc').value).to.equal('abc')
    })
  })

  describe('number', () => {
    it('refuses non-numbers, NaN and infinities', () => {
      expect(run(number(), '5').problems).to.deep.equal(['opt must be a number, not "5"'])
      expect(run(number(), NaN).problems).to.have.length(1)
      expect(run(number(), Infinity).problems).to.have.length(1)
    })

    it('checks whole numbers and bounds, inclusive', () => {
      const check = number({ min: 1, max: 10, integer: true })
      expect(run(check, 1.5).problems).to.deep.equal(['opt must be a whole number'])
      expect(run(check, 0).problems).to.deep.equal(['opt must be at least 1'])
      expect(run(check, 11).problems).to.deep.equal(['opt must be at most 10'])
      expect(run(check, 1).value).to.equal(1)
      expect(run(check, 10).value).to.equal(10)
    })
  })

  describe('boolean', () => {
    it('accepts only true and false', () => {
      expect(run(boolean(), false)).to.deep.equal({ value: false, problems: [] })
      expect(run(boolean(), 'true').problems).to.deep.equal(['opt must be true or false, not "true"'])
      expect(run(boolean(), 0).problems).to.deep.equal(['opt must be true or false, not number'])
    })
  })

  describe('oneOf', () => {
    const level = oneOf(['debug', 'info', 'warn'] as const)

    it('accepts a listed value and lists them all when refusing', () => {
      expect(run(level, 'info').value).to.equal('info')
      expect(run(level, 'loud').problems).to.deep.equal(['opt must be one of debug, info, warn, not "loud"'])
      expect(run(level, 3).problems).to.deep.equal(['opt must be one of debug, info, warn, not number'])
    })

    it('takes numbers too, and shows a wrong one as itself', () => {
      const bits = oneOf([2048, 3072] as const)
      expect(run(bits, 3072).value).to.equal(3072)
      expect(run(bits, 8192).problems).to.deep.equal(['opt must be one of 2048, 3072, not 8192'])
      expect(run(bits, '3072').problems).to.deep.equal(['opt must be one of 2048, 3072, not "3072"'])
    })

    it('suggests the nearest value for a typo', () => {
      expect(run(level, 'wran').problems).to.deep.equal([
        'opt must be one of debug, info, warn, not "wran" (did you mean "warn"?)',
      ])
    })
  })

  describe('list', () => {
    it('checks each item, naming it by index, and keeps every problem', () => {
      const result = run(list(number()), [1, 'two', 3, null], 'ports')
      expect(result.value).to.equal(undefined)
      expect(result.problems).to.deep.equal([
        'ports[1] must be a number, not "two"',
        'ports[3] must be a number, not null',
      ])
      expect(run(list(number()), [1, 2]).value).to.deep.equal([1, 2])
    })

    it('refuses a non-list and too many items', () => {
      expect(run(list(number()), { 0: 1 }).problems).to.deep.equal(['opt must be a list, not object'])
      expect(run(list(number(), { maxItems: 2 }), [1, 2, 3]).problems).to.deep.equal(['opt may hold at most 2 entries'])
    })
  })

  describe('either', () => {
    const entry = either(string(), object({ resolve: string() }), (v) => (typeof v === 'string' ? 'a' : 'b'))

    it("checks the value against the shape it was picked for, and reports only that shape's problems", () => {
      expect(run(entry, 'udp').value).to.equal('udp')
      expect(run(entry, { resolve: 'udp' }).value).to.deep.equal({ resolve: 'udp' })
      expect(run(entry, { resolve: 1 }).problems).to.deep.equal(['opt.resolve must be a string, not number'])
    })
  })

  describe('optional', () => {
    it('gives the fallback only when the value is absent', () => {
      expect(run(optional(number(), 7), undefined).value).to.equal(7)
      expect(run(optional(number()), undefined)).to.deep.equal({ value: undefined, problems: [] })
      expect(run(optional(number(), 7), null).problems).to.deep.equal(['opt must be a number, not null'])
      expect(run(optional(number(), 7), 3).value).to.equal(3)
    })
  })

  describe('object', () => {
    const shape = object({
      server: optional(string(), 'default:1'),
      log: optional(object({ level: oneOf(['info', 'debug'] as const) }), { level: 'info' as const }),
    })

    it('fills defaults and keeps given values', () => {
      expect(validate(shape, {})).to.deep.equal({ value: { server: 'default:1', log: { level: 'info' } } })
      expect(validate(shape, { log: { level: 'debug' } })).to.deep.equal({
        value: { server: 'default:1', log: { level: 'debug' } },
      })
    })

    it('reports unknown keys with a suggestion and nested problems by their dotted path, all at once', () => {
      expect(validate(shape, { sever: 'x', server: 1, log: { level: 'dbug', lvl: 1 } })).to.deep.equal({
        problems: [
          'sever is not a known option (did you mean "server"?)',
          'server must be a string, not number',
          'log.lvl is not a known option (did you mean "level"?)',
          'log.level must be one of info, debug, not "dbug" (did you mean "debug"?)',
        ],
      })
    })

    it('refuses a value that is not an object, naming the key or "the value" at the top', () => {
      expect(validate(shape, [])).to.deep.equal({ problems: ['the value must be an object, not a list'] })
      expect(validate(shape, { log: null })).to.deep.equal({ problems: ['log must be an object, not null'] })
      expect(validate(shape, { log: 'debug' })).to.deep.equal({ problems: ['log must be an object, not "debug"'] })
    })
  })

  describe('validate', () => {
    it('prefixes problems with the given path', () => {
      expect(validate(number(), 'x', 'plugins[0].port')).to.deep.equal({
        problems: ['plugins[0].port must be a number, not "x"'],
      })
    })
  })
})
