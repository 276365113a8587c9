import { defineConfig } from 'vitest/config'

/** Every package's vitest settings: reports land in test-results/ so .ci/run can count them. */
export const sharedVitestConfig = defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
