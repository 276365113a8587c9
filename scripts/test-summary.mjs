// Adds up the test reports every package (and the repository root) writes to test-results/ (vitest JSON, node:test JUnit) and prints
// the closing line CI reads: "N passed, N failed".
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const folders = ['packages', 'examples'].flatMap((group) =>
  existsSync(join(root, group)) ? readdirSync(join(root, group)).map((name) => join(root, group, name)) : [],
)
// The root's own test-results/ holds what the CI scripts under scripts/ check (client matrix, packed tarballs).
folders.push(join(root, 'bench'), join(root, 'torture'), root)

let passed = 0
let failed = 0
// Named failures are printed above the closing line, so a CI log that keeps only its tail still says what broke.
const failures = []
for (const folder of folders) {
  const results = join(folder, 'test-results')
  if (!existsSync(results)) continue
  for (const file of readdirSync(results)) {
    const text = readFileSync(join(results, file), 'utf8')
    if (file.endsWith('.json')) {
      const report = JSON.parse(text)
      passed += report.numPassedTests ?? 0
      failed += report.numFailedTests ?? 0
      for (const fileResult of report.testResults ?? []) {
        const where = fileResult.name ? fileResult.name.replace(root, '') : join(folder, file).replace(root, '')
        const assertions = fileResult.assertionResults ?? []
        // A file can fail with no failed test of its own: it failed to load, or a suite-level hook
        // (beforeAll, afterAll) threw, which leaves that suite's tests skipped. Count it as one failure,
        // so the closing line never says "0 failed" for a red run.
        if (fileResult.status === 'failed' && !assertions.some((assertion) => assertion.status === 'failed')) {
          failed += 1
          const skipped = assertions.filter((assertion) => assertion.status !== 'passed').map((assertion) => assertion.title)
          const reason =
            firstLine(fileResult.message) ||
            (assertions.length === 0
              ? 'the file failed to load'
              : `a suite hook failed (see the log above); did not run: ${skipped.join('; ') || 'none'}`)
          failures.push(`${where}: ${reason}`)
        }
        for (const assertion of assertions) {
          if (assertion.status !== 'failed') continue
          failures.push(`${where} > ${assertion.fullName ?? assertion.title}: ${firstLine((assertion.failureMessages ?? [])[0])}`)
        }
      }
    } else if (file.endsWith('.xml')) {
      const cases = text.match(/<testcase\b[^>]*?(\/>|>[\s\S]*?<\/testcase>)/g) ?? []
      for (const testCase of cases) {
        if (/<failure\b|<error\b/.test(testCase)) {
          failed += 1
          failures.push(`${join(folder, file).replace(root, '')} > ${/name="([^"]*)"/.exec(testCase)?.[1] ?? 'a test case'}`)
        } else if (!/<skipped\b/.test(testCase)) passed += 1
      }
    }
  }
}
function firstLine(text) {
  return (
    String(text ?? '')
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim()
      .slice(0, 300) ?? ''
  )
}

if (failures.length > 0) {
  console.log('failed tests:')
  for (const failure of failures) console.log(`  ${failure}`)
}
console.log(`${passed} passed, ${failed} failed`)
