// Mocha's spec reporter plus one closing line in the plain form CI reads: "N passed, N failed, N skipped".
import * as Mocha from 'mocha'

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options)
    runner.once('end', () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats
      process.stdout.write(`\n${passes} passed, ${failures} failed, ${pending} skipped\n`)
    })
  }
}

export = SpecWithSummary
