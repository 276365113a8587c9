// `pnpm demo`: runs examples/basic on a fresh clone right after `pnpm install`. The example imports the
// built packages it depends on, so any of them whose dist/ is missing or older than its src/ is built first.
// Only the JavaScript is built here (a second or two); the declarations come with `pnpm build`, which turbo
// runs in full because this build leaves no entry in its cache. (Dirent.path: Node 20 before 20.12.)
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const example = join(root, 'examples/basic')

function newestChange(folder) {
  let newest = 0
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs)
  }
  return newest
}

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

const { dependencies = {} } = JSON.parse(readFileSync(join(example, 'package.json'), 'utf8'))
for (const [name, range] of Object.entries(dependencies)) {
  if (!String(range).startsWith('workspace:')) continue
  const folder = join(root, 'packages', name.replace('@verrou/', ''))
  const built = join(folder, 'dist/index.js')
  const inputs = Math.max(newestChange(join(folder, 'src')), statSync(join(folder, 'package.json')).mtimeMs)
  if (existsSync(built) && statSync(built).mtimeMs >= inputs) continue
  console.log(`building ${name} (JavaScript only) for the demo`)
  run('pnpm', ['exec', 'tsup', '--no-dts', '--silent'], folder)
}
run('pnpm', ['run', '--silent', 'demo'], example)
