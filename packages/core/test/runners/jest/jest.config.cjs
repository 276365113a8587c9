// Runs the conformance suite under jest, on core's CommonJS build: no transform, no experimental ESM flag.
const { join } = require('node:path')

const packageRoot = join(__dirname, '..', '..', '..')

module.exports = {
  rootDir: packageRoot,
  testMatch: ['<rootDir>/test/runners/jest/*.jest.cjs'],
  testEnvironment: 'node',
  transform: {},
  reporters: ['default', ['jest-junit', { outputDirectory: join(packageRoot, 'test-results'), outputName: 'jest.xml' }]],
}
