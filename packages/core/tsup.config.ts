import { packageBuild } from '../../tsup.shared.js'

export default packageBuild(
  { index: 'src/index.ts', 'test_suite/index': 'src/test_suite/index.ts' },
  // The conformance suite imports node:assert; it is a dev-time entry point, never on the runtime path.
  { external: ['node:assert'] },
)
