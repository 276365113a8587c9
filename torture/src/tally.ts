import { appendFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** What the suite counts, so a run can state how hard it pushed: the numbers the README quotes. */
export type TallyCategory = 'criticalSections' | 'faultsInjected' | 'inputsTried'

/**
 * Each test file runs in its own worker, so counts are appended to one JSON-lines file (an O_APPEND write
 * of one short line is atomic) and summed by the global setup's teardown.
 */
export const TALLY_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results', 'torture-tally.jsonl')

export function tally(category: TallyCategory, store: string, count: number, what: string): void {
  mkdirSync(dirname(TALLY_FILE), { recursive: true })
  appendFileSync(TALLY_FILE, `${JSON.stringify({ category, store, count, what })}\n`)
}
