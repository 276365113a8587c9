import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { TALLY_FILE, type TallyCategory } from './tally.js'

interface Entry {
  category: TallyCategory
  store: string
  count: number
  what: string
}

const LABELS: Record<TallyCategory, string> = {
  criticalSections: 'critical sections run across processes',
  faultsInjected: 'backend faults injected',
  inputsTried: 'hostile / generated inputs tried',
}

export function setup(): void {
  rmSync(TALLY_FILE, { force: true })
}

/** Prints the totals at the end of the run and keeps them in test-results/torture-counts.json. */
export function teardown(): void {
  if (!existsSync(TALLY_FILE)) return
  const entries = readFileSync(TALLY_FILE, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Entry)
  const totals = { criticalSections: 0, faultsInjected: 0, inputsTried: 0 } satisfies Record<TallyCategory, number>
  const byStore = new Map<string, Record<TallyCategory, number>>()
  for (const entry of entries) {
    totals[entry.category] += entry.count
    const row = byStore.get(entry.store) ?? { criticalSections: 0, faultsInjected: 0, inputsTried: 0 }
    row[entry.category] += entry.count
    byStore.set(entry.store, row)
  }
  const lines = ['', 'Verrou torture suite: counts', '']
  for (const category of Object.keys(LABELS) as TallyCategory[]) {
    lines.push(`  ${String(totals[category]).padStart(7)}  ${LABELS[category]}`)
  }
  lines.push('', '  store        sections   faults   inputs')
  for (const [store, row] of [...byStore].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(
      `  ${store.padEnd(10)} ${String(row.criticalSections).padStart(10)} ${String(row.faultsInjected).padStart(8)} ${String(row.inputsTried).padStart(8)}`,
    )
  }
  console.log(lines.join('\n'))
  writeFileSync(
    join(dirname(TALLY_FILE), 'torture-counts.json'),
    `${JSON.stringify({ totals, byStore: Object.fromEntries(byStore), entries }, null, 2)}\n`,
  )
}
