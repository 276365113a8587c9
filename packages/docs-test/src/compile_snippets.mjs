// Writes snippet modules into a scratch folder and compiles them with one tsc run per configuration,
// attributing each error to the README line it comes from.
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative, resolve } from 'node:path'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

/**
 * @param modules from snippetModules, each with `readmeFolder` set
 * @param compilerOptions the tsconfig's compilerOptions
 * @returns one entry per module: { module, errors: string[] }
 */
export function compileSnippets({ name, scratch, modules, compilerOptions, placeholders, repositoryRoot }) {
  const folder = join(scratch, name)
  rmSync(folder, { recursive: true, force: true })
  mkdirSync(folder, { recursive: true })
  writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n')
  const files = modules.map((module, index) => {
    // Mirror the README's folder so a snippet's relative imports ('./handler.js') resolve through rootDirs.
    const mirror = join(folder, relative(repositoryRoot, module.readmeFolder))
    mkdirSync(mirror, { recursive: true })
    const file = join(mirror, `snippet-${index}.ts`)
    writeFileSync(file, `${module.code}\nexport {}\n`)
    return file
  })
  const rootDirs = [...new Set(modules.map((module) => module.readmeFolder))].flatMap((readme) => [
    join(folder, relative(repositoryRoot, readme)),
    readme,
    join(readme, 'src'),
  ])
  const tsconfig = { compilerOptions: { ...compilerOptions, noEmit: true, rootDirs }, files: [placeholders, ...files] }
  writeFileSync(join(folder, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))

  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: folder, encoding: 'utf8' })
  const diagnostics = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('error TS'))
  const outcomes = modules.map((module) => ({ module, errors: [] }))
  const unattributed = []
  for (const diagnostic of diagnostics) {
    const match = diagnostic.match(/^(.*?)\((\d+),(\d+)\): (.*)$/)
    const index = match ? files.indexOf(resolve(folder, match[1])) : -1
    if (index === -1) {
      unattributed.push(
        match ? `${relative(repositoryRoot, resolve(folder, match[1]))}(${match[2]},${match[3]}): ${match[4]}` : diagnostic,
      )
      continue
    }
    const line = Number(match[2])
    const { segments } = modules[index]
    const segment = segments.findLast((candidate) => candidate.firstLine <= line) ?? segments[0]
    const readmeLine = segment.block.line + (line - segment.firstLine)
    outcomes[index].errors.push(`${relative(repositoryRoot, segment.block.file)}:${readmeLine}: ${match[4]}`)
  }
  if (result.status !== 0 && diagnostics.length === 0) unattributed.push(result.stdout + result.stderr)
  return { outcomes, unattributed }
}
