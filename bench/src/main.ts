import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs, USAGE } from './cli.js'
import { currentLoad, describeMachine, packageVersion, REPORTED_PACKAGES } from './environment.js'
import { renderChart } from './report/chart.js'
import { renderMarkdown } from './report/markdown.js'
import { evaluateTargets } from './report/targets.js'
import { runBench } from './run.js'

const args = process.argv.slice(2).filter((arg) => arg !== '--')
const options = parseArgs(args)
if (options.help) {
  console.log(USAGE)
  process.exit(0)
}

const loadAtStart = currentLoad()
const date = new Date()
const result = await runBench({
  plan: options.plan,
  stores: options.stores,
  scenarios: options.scenarios,
  log: (line) => console.error(line),
})
const command = ['pnpm bench', ...args].join(' ')
const versions = Object.fromEntries(REPORTED_PACKAGES.map((name) => [name, packageVersion(name)]))
const verdicts = evaluateTargets(result)

// Only a complete full run replaces the published results; anything else lands in bench/results/.
const official = options.writeDocs && result.errors.length === 0
const folder = new URL(official ? '../../docs/' : '../results/', import.meta.url)
const name = official ? 'benchmarks' : options.plan.name
await mkdir(folder, { recursive: true })
const markdown = renderMarkdown({
  result,
  machine: describeMachine(loadAtStart),
  versions,
  command,
  verdicts,
  chart: `${name}.svg`,
  date,
})
await writeFile(new URL(`${name}.md`, folder), markdown)
await writeFile(new URL(`${name}.svg`, folder), renderChart(result))

console.log(markdown)
console.error(`\nwritten: ${new URL(`${name}.md`, folder).pathname} and ${name}.svg`)
if (result.errors.length > 0) {
  console.error(`\nthe run had ${result.errors.length} error(s):\n${result.errors.map((error) => `- ${error}`).join('\n')}`)
  process.exitCode = 1
}
