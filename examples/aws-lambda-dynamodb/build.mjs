// Bundles the handler into dist/handler.mjs, the one file deployed to Lambda (zip dist/ and upload it).
// @aws-sdk/* stays external: the Node.js 20 runtime ships SDK v3 (see the README for why, and how to bundle it).
import { build } from 'esbuild'

const result = await build({
  entryPoints: { handler: 'src/handler.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: ['@aws-sdk/*'],
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
})
const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.mjs'))
  .map(([file, output]) => `${file} ${(output.bytes / 1000).toFixed(1)} kB`)
console.log(`built ${bytes.join(', ')}`)
