// Runs a driver's typecheck and tests against each supported major of its client that `pnpm test` does not
// already use (it runs the versions pinned in devDependencies). Each run happens in a temporary copy of the
// repository (built dist/ included) where a pnpm override installs that client version everywhere, so the
// working tree is never touched. Real servers, as in `pnpm test`.
//
//   node scripts/client-matrix.mjs            every row below
//   node scripts/client-matrix.mjs redis      only the rows of that package
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { junitReport, repositoryRoot, resultsFolder } from './junit_report.mjs'

/** package folder, client, version to install: the majors the peer range accepts beyond the pinned one. */
const matrix = [{ folder: 'redis', client: 'ioredis', version: '^6.0.0' }]

const only = process.argv[2]
const rows = matrix.filter((row) => only === undefined || row.folder === only)
const report = junitReport('client-matrix')

function run(command, args, cwd) {
  const started = performance.now()
  const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const seconds = (performance.now() - started) / 1000
  return { ok: result.status === 0, output: `${result.stdout}\n${result.stderr}`, seconds }
}

for (const { folder, client, version } of rows) {
  const label = `@verrou/${folder} with ${client}@${version}`
  const copy = mkdtempSync(join(tmpdir(), `verrou-matrix-${folder}-`))
  try {
    execFileSync('rsync', [
      '-a',
      '--exclude=node_modules',
      '--exclude=.git',
      '--exclude=.turbo',
      '--exclude=test-results',
      `${repositoryRoot}/`,
      `${copy}/`,
    ])
    const manifestPath = join(copy, 'package.json')
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
    manifest.pnpm = { ...manifest.pnpm, overrides: { ...manifest.pnpm?.overrides, [client]: version } }
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)

    const install = run(
      'pnpm',
      ['install', '--no-frozen-lockfile', '--prefer-offline', '--config.confirmModulesPurge=false'],
      copy,
    )
    if (!install.ok) {
      report.fail(`${label}: install`, install.output, install.seconds)
      continue
    }
    const packageFolder = join(copy, 'packages', folder)
    const installed = createRequire(join(packageFolder, 'package.json'))(`${client}/package.json`).version
    report.pass(`${label}: install (resolved ${installed})`, install.seconds)

    const typecheck = run('pnpm', ['exec', 'tsc', '--noEmit'], packageFolder)
    if (typecheck.ok) report.pass(`${label}: typecheck against ${client} ${installed}'s own types`, typecheck.seconds)
    else report.fail(`${label}: typecheck against ${client} ${installed}'s own types`, typecheck.output, typecheck.seconds)

    // The package's tests, reported to the summary like the package's own run.
    const tests = run('pnpm', ['exec', 'vitest', 'run'], packageFolder)
    const vitestReport = join(packageFolder, 'test-results/vitest.json')
    if (existsSync(vitestReport)) {
      // A fresh clone has no root test-results/ yet: the JUnit report creates it only when it is saved.
      mkdirSync(resultsFolder, { recursive: true })
      copyFileSync(vitestReport, join(resultsFolder, `client-matrix-${folder}-${client.replace(/\W+/g, '-')}-${installed}.json`))
    }
    const summary = tests.output.match(/Tests\s+.*$/m)?.[0] ?? ''
    if (tests.ok) report.pass(`${label}: tests with ${client} ${installed} (${summary.trim()})`, tests.seconds)
    else report.fail(`${label}: tests with ${client} ${installed}`, tests.output, tests.seconds)
  } finally {
    rmSync(copy, { recursive: true, force: true })
  }
}
report.save()
process.exitCode = report.failures === 0 ? 0 : 1
