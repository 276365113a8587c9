import { defineConfig, type Options } from 'tsup'

/** The build of every published package: ESM and CommonJS, each with its own declarations. */
export function packageBuild(entry: Record<string, string> = { index: 'src/index.ts' }, options: Options = {}) {
  return defineConfig({ entry, format: ['esm', 'cjs'], dts: true, clean: true, target: 'es2022', ...options })
}
