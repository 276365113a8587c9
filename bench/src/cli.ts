import { PLANS, type Plan } from './plan.js'
import { STORE_IDS, type StoreId } from './subject.js'

/** The measurements a run can be limited to (all of them by default). */
export const SCENARIOS = ['cycles', 'scaling', 'contention', 'processes', 'cpu'] as const
export type Scenario = (typeof SCENARIOS)[number]

export interface CliOptions {
  plan: Plan
  stores: StoreId[]
  scenarios: Scenario[]
  /** Only a full run of every store rewrites docs/benchmarks.md; others write to bench/results/. */
  writeDocs: boolean
  help: boolean
}

export const USAGE = `Usage: pnpm bench [--quick] [--only=<store>[,<store>...]]

  --quick         shorter rounds (under two minutes); results go to bench/results/
  --only=<list>   measure only these stores: ${STORE_IDS.join(', ')}; results go to bench/results/
  --scenarios=<list>  run only these measurements: ${SCENARIOS.join(', ')}; results go to bench/results/

Without options every store is measured and docs/benchmarks.md and docs/benchmarks.svg are rewritten.`

export function parseArgs(args: readonly string[]): CliOptions {
  let plan = PLANS.full
  let stores: StoreId[] = [...STORE_IDS]
  let scenarios: Scenario[] = [...SCENARIOS]
  let help = false
  for (const arg of args) {
    if (arg === '--') continue
    if (arg === '--quick') plan = PLANS.quick
    else if (arg === '--help' || arg === '-h') help = true
    else if (arg.startsWith('--only=')) {
      const names = arg.slice('--only='.length).split(',').filter(Boolean)
      const unknown = names.filter((name) => !(STORE_IDS as readonly string[]).includes(name))
      if (names.length === 0 || unknown.length > 0) {
        throw new Error(`--only takes store names among ${STORE_IDS.join(', ')}; got ${JSON.stringify(arg)}`)
      }
      stores = STORE_IDS.filter((store) => names.includes(store))
    } else if (arg.startsWith('--scenarios=')) {
      const names = arg.slice('--scenarios='.length).split(',').filter(Boolean)
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name))
      if (names.length === 0 || unknown.length > 0) {
        throw new Error(`--scenarios takes names among ${SCENARIOS.join(', ')}; got ${JSON.stringify(arg)}`)
      }
      scenarios = SCENARIOS.filter((scenario) => names.includes(scenario))
    } else throw new Error(`unknown option ${JSON.stringify(arg)}\n\n${USAGE}`)
  }
  const everything = stores.length === STORE_IDS.length && scenarios.length === SCENARIOS.length
  return { plan, stores, scenarios, writeDocs: plan.name === 'full' && everything, help }
}
