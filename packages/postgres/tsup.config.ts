import { packageBuild } from '../../tsup.shared.js'

// @verrou/sql-housekeeping is private and never published: bundle its code (noExternal) and its types (tsconfig
// `paths` points at its sources, so the declaration bundler inlines them), leaving dist only the peers to need.
export default packageBuild(undefined, { noExternal: ['@verrou/sql-housekeeping'] })
