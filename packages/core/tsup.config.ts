import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', 'test_suite/index': 'src/test_suite/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // The conformance suite imports node:assert; it is a dev-time entry point, never on the runtime path.
  external: ['node:assert'],
})
