// Records the checks a CI script runs as JUnit test cases in <root>/test-results/, where
// scripts/test-summary.mjs counts them next to the packages' own test reports.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const repositoryRoot = new URL('..', import.meta.url).pathname
export const resultsFolder = join(repositoryRoot, 'test-results')

const escapeXml = (text) => String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c])

/** A named suite of checks; each check prints "ok"/"FAIL" as it finishes, and `save()` writes the report. */
export function junitReport(suite) {
  const cases = []
  return {
    get failures() {
      return cases.filter((c) => c.failure !== undefined).length
    },
    pass(name, seconds = 0) {
      cases.push({ name, seconds })
      console.log(`ok   ${name}`)
    },
    fail(name, failure, seconds = 0) {
      cases.push({ name, seconds, failure: String(failure).slice(-4000) })
      console.log(`FAIL ${name}\n${String(failure).slice(-4000)}`)
    },
    save() {
      mkdirSync(resultsFolder, { recursive: true })
      const body = cases
        .map(({ name, seconds, failure }) => {
          const open = `  <testcase classname="${escapeXml(suite)}" name="${escapeXml(name)}" time="${seconds.toFixed(1)}"`
          return failure === undefined
            ? `${open}/>`
            : `${open}>\n    <failure message="failed">${escapeXml(failure)}</failure>\n  </testcase>`
        })
        .join('\n')
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="${escapeXml(suite)}" tests="${cases.length}" failures="${this.failures}">\n${body}\n</testsuite>\n`
      writeFileSync(join(resultsFolder, `${suite}.xml`), xml)
      console.log(`${suite}: ${cases.length - this.failures} passed, ${this.failures} failed`)
    },
  }
}
