// Runs the conformance suite under mocha, as ES modules, writing a JUnit (xunit) report CI counts.
const { join } = require('node:path')

module.exports = {
  spec: [join(__dirname, '*.mocha.mjs')],
  reporter: 'xunit',
  'reporter-option': [`output=${join(__dirname, '..', '..', '..', 'test-results', 'mocha.xml')}`],
}
