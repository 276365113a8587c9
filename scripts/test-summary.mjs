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
for (const folder of folders) {
  const results = join(folder, 'test-results')
  if (!existsSync(results)) continue
  for (const file of readdirSync(results)) {
    const text = readFileSync(join(results, file), 'utf8')
    if (file.endsWith('.json')) {
      const report = JSON.parse(text)
      passed += report.numPassedTests ?? 0
      failed += report.numFailedTests ?? 0
      // A test file that failed to load has no test results of its own: count it as one failure.
      for (const fileResult of report.testResults ?? []) {
        if (fileResult.status === 'failed' && (fileResult.assertionResults ?? []).length === 0) failed += 1
      }
    } else if (file.endsWith('.xml')) {
      const cases = text.match(/<testcase\b[^>]*?(\/>|>[\s\S]*?<\/testcase>)/g) ?? []
      for (const testCase of cases) {
        if (/<failure\b|<error\b/.test(testCase)) failed += 1
        else if (!/<skipped\b/.test(testCase)) passed += 1
      }
    }
  }
}
console.log(`${passed} passed, ${failed} failed`)
