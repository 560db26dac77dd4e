// docs/PLUGINS.md's reference tables against the code they describe, so the docs cannot drift from the hooks and services.
import { expect } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createHooks } from '../hooks'

const ROOT = (() => {
  let dir = __dirname
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  return dir
})()
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8')

/** The rows of the markdown table that follows the HTML comment containing `marker`, as trimmed cells. */
function tableAfter(markdown: string, marker: string): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((line) => line.startsWith('<!--') && line.includes(marker))
  expect(start, `docs/PLUGINS.md has no "${marker}" marker`).to.be.at.least(0)
  const rows: string[][] = []
  // The header and the --- line come first; the table ends at the first line that is not a row.
  for (const line of lines.slice(start + 3)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .slice(1, -1)
        .split(' | ')
        .map((cell) => cell.trim()),
    )
  }
  return rows
}

/** A `code` cell's name: `hooks` → hooks. */
const codeName = (cell: string) => /^`(\w+)`$/.exec(cell)?.[1] ?? `(not a \`name\`: ${cell})`

describe('docs/PLUGINS.md', () => {
  const doc = read('docs/PLUGINS.md')

  it('lists every hook of createHooks(), and only those, with its tapable type and its comment in core/hooks.ts', () => {
    const hooks = createHooks()
    // Each hook's one-line comment in core/hooks.ts is what the docs quote.
    const comments = new Map(
      [...read('core/hooks.ts').matchAll(/\/\*\* (.*?) \*\/\n\s*(\w+): new \w+/g)].map((m) => [m[2], m[1]]),
    )
    const documented = tableAfter(doc, 'hooks table')
    expect(
      documented.map(([name]) => codeName(name)),
      'hooks in the table, in the order of core/hooks.ts',
    ).to.deep.equal(Object.keys(hooks))
    for (const [name, type, firedBy, description] of documented) {
      const hook = hooks[codeName(name) as keyof typeof hooks]
      expect(type, `${name}'s type`).to.equal(hook.constructor.name)
      expect(firedBy, `${name} says who fires it`).to.match(/\w/)
      expect(comments.get(codeName(name)), `${name} has a one-line /** comment */ in core/hooks.ts`).to.be.a('string')
      expect(description, `${name}'s description is its comment in core/hooks.ts`).to.equal(
        comments.get(codeName(name)),
      )
    }
  })

  it('lists every key of CoreServices, and only those', () => {
    const source = read('core/plugin.ts')
    const body = /export interface CoreServices \{([\s\S]*?)\n\}/.exec(source)?.[1]
    expect(body, 'core/plugin.ts declares CoreServices').to.be.a('string')
    const keys = [...(body ?? '').matchAll(/^ {2}(\w+): /gm)].map((m) => m[1])
    expect(keys).to.include.members(['hooks', 'chat'])
    const documented = tableAfter(doc, 'services table').map(([name]) => codeName(name))
    expect(documented).to.deep.equal(keys)
  })
})
