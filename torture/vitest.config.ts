import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedVitestConfig } from '../vitest.shared.js'

/**
 * The torture suite: files run one after another (fileParallelism off) because several of them spawn 8 worker
 * processes or freeze a backend, and timing bounds must not be blurred by a neighbour eating both cores.
 */
export default mergeConfig(
  sharedVitestConfig,
  defineConfig({
    test: {
      include: ['src/**/*.test.ts'],
      globalSetup: ['./src/global_setup.ts'],
      fileParallelism: false,
      testTimeout: 120_000,
      hookTimeout: 120_000,
      teardownTimeout: 30_000,
      // The AWS SDK warns once per process about Node 20; with 8 workers per store that is noise.
      env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    },
  }),
)
