// Bundles the Worker into dist/worker.js, the one module workerd loads (what `wrangler deploy` would upload).
import { build } from 'esbuild'

await build({
  entryPoints: { worker: 'src/worker.ts' },
  outdir: 'dist',
  bundle: true,
  format: 'esm',
  // The Workers runtime: browser-like globals, no Node.js built-ins; packages' "workerd"/"worker" exports first.
  platform: 'browser',
  conditions: ['workerd', 'worker', 'browser'],
  target: 'es2022',
  sourcemap: 'linked',
  logLevel: 'warning',
})
