// node-forge before 1.4 has signature-forgery CVEs; `npm audit` cannot reach an advisory service here, so this pins the rule.
import { expect } from 'chai'

describe('rsa dependencies', () => {
  it('run on node-forge 1.4 or newer', () => {
    const { version } = require('node-forge/package.json') as { version: string }
    const [major, minor] = version.split('.').map(Number)
    expect(major > 1 || (major === 1 && minor >= 4), `node-forge ${version}`).to.equal(true)
  })
})
