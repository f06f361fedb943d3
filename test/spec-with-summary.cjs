// Mocha's spec reporter, closing with one plain "N passed, N failed, N skipped" line that CI
// tools can read without knowing mocha.
const { Spec } = require('mocha').reporters;

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const { passes, failures, pending } = this.stats;
      console.log(`${passes} passed, ${failures} failed, ${pending} skipped`);
    });
  }
}

module.exports = SpecWithSummary;
