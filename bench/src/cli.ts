import { PLANS, type Plan } from './plan.js'
import { STORE_IDS, type StoreId } from './subject.js'

export interface CliOptions {
  plan: Plan
  stores: StoreId[]
  /** Only a full run of every store rewrites docs/benchmarks.md; others write to bench/results/. */
  writeDocs: boolean
  help: boolean
}

export const USAGE = `Usage: pnpm bench [--quick] [--only=<store>[,<store>...]]

  --quick         shorter rounds (under two minutes); results go to bench/results/
  --only=<list>   measure only these stores: ${STORE_IDS.join(', ')}; results go to bench/results/

Without options every store is measured and docs/benchmarks.md and docs/benchmarks.svg are rewritten.`

export function parseArgs(args: readonly string[]): CliOptions {
  let plan = PLANS.full
  let stores: StoreId[] = [...STORE_IDS]
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
    } else throw new Error(`unknown option ${JSON.stringify(arg)}\n\n${USAGE}`)
  }
  return { plan, stores, writeDocs: plan.name === 'full' && stores.length === STORE_IDS.length, help }
}
