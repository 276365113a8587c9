// The docs test: every ```ts block of every README.md (root, packages/*, examples/*) and docs/*.md is compiled
// with tsc --strict; the blocks of the edge-facing packages' READMEs are compiled again as an edge function
// sees them (lib ES2022 + WebWorker, no Node types, skipLibCheck off, so the packages' .d.ts are checked too).
// Names the snippets use for the reader's own code are declared, typed, in placeholders.d.ts. Results go to
// test-results/docs.xml as one test case per snippet and configuration.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { compileSnippets } from './compile_snippets.mjs'
import { snippetModules, typescriptBlocks } from './markdown_blocks.mjs'

const here = new URL('..', import.meta.url).pathname
const repositoryRoot = join(here, '../..')
const scratch = join(here, 'node_modules/.cache/docs-test')

const edgeFacing = ['packages/core/README.md', 'packages/upstash/README.md']
const strictOptions = {
  strict: true,
  target: 'ES2022',
  lib: ['ES2022', 'ESNext.Disposable'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  types: ['node'],
  skipLibCheck: true,
}
const edgeOptions = {
  strict: true,
  target: 'ES2022',
  lib: ['ES2022', 'WebWorker'],
  module: 'ESNext',
  moduleResolution: 'Bundler',
  types: [],
  skipLibCheck: false,
}

function markdownFiles() {
  const inFolders = (group, file) =>
    existsSync(join(repositoryRoot, group))
      ? readdirSync(join(repositoryRoot, group)).map((name) => join(repositoryRoot, group, name, file))
      : []
  const docs = existsSync(join(repositoryRoot, 'docs'))
    ? readdirSync(join(repositoryRoot, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => join(repositoryRoot, 'docs', name))
    : []
  return [
    join(repositoryRoot, 'README.md'),
    ...inFolders('packages', 'README.md'),
    ...inFolders('examples', 'README.md'),
    ...docs,
  ].filter((file) => existsSync(file))
}

function modulesOf(files, edge = false) {
  return files.flatMap((file) =>
    snippetModules(typescriptBlocks(file, readFileSync(file, 'utf8')), { edge }).map((module) => ({
      ...module,
      readmeFolder: dirname(file),
    })),
  )
}

const cases = []
const record = (suite, name, errors) => cases.push({ suite, name, errors })

function check(suite, files, options, placeholders) {
  const modules = modulesOf(files, suite === 'edge')
  const { outcomes, unattributed } = compileSnippets({
    name: suite,
    scratch,
    modules,
    compilerOptions: options,
    placeholders,
    repositoryRoot,
  })
  for (const { module, errors } of outcomes) {
    const first = module.segments[0].block
    record(suite, `${relative(repositoryRoot, first.file)}:${first.line}`, errors)
  }
  // Errors outside the snippets: in a package's .d.ts (skipLibCheck off) or in the configuration itself.
  record(suite, 'declarations and configuration compile', unattributed)
}

const files = markdownFiles()
check('strict', files, strictOptions, join(here, 'placeholders.d.ts'))
check(
  'edge',
  files.filter((file) => edgeFacing.includes(relative(repositoryRoot, file))),
  edgeOptions,
  join(here, 'placeholders.d.ts'),
)

// The checker itself must catch a wrong snippet: a fixture with a type error is compiled and must fail.
const fixture = join(here, 'fixtures/README.md')
const fixtureRun = compileSnippets({
  name: 'fixture',
  scratch,
  modules: modulesOf([fixture]),
  compilerOptions: strictOptions,
  placeholders: join(here, 'placeholders.d.ts'),
  repositoryRoot,
})
const caught = fixtureRun.outcomes.map(({ errors }) => errors.join('\n'))
record(
  'self-check',
  'a snippet with a type error fails, at its README line; a correct one and a continued one pass',
  caught.length === 2 && /fixtures\/README\.md:8: error TS\d+/.test(caught[0]) && caught[1] === ''
    ? []
    : [`unexpected result for the fixture: ${JSON.stringify(caught)}`],
)

const marked = files
  .flatMap((file) => typescriptBlocks(file, readFileSync(file, 'utf8')))
  .filter((block) => block.mode !== 'check')
for (const block of marked) console.log(`${block.mode} ${relative(repositoryRoot, block.file)}:${block.line} (${block.reason})`)
const skipped = marked.filter((block) => block.mode === 'skip')

let failed = 0
for (const { suite, name, errors } of cases) {
  if (errors.length === 0) console.log(`ok   [${suite}] ${name}`)
  else {
    failed++
    console.log(`FAIL [${suite}] ${name}\n${errors.map((error) => `       ${error}`).join('\n')}`)
  }
}
const escapeXml = (text) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c])
const body = cases
  .map(({ suite, name, errors }) => {
    const open = `  <testcase classname="docs.${suite}" name="${escapeXml(name)}"`
    return errors.length === 0 ? `${open}/>` : `${open}>\n    <failure>${escapeXml(errors.join('\n'))}</failure>\n  </testcase>`
  })
  .join('\n')
mkdirSync(join(here, 'test-results'), { recursive: true })
writeFileSync(
  join(here, 'test-results/docs.xml'),
  `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="docs" tests="${cases.length}" failures="${failed}">\n${body}\n</testsuite>\n`,
)
console.log(`\n${cases.length - failed} passed, ${failed} failed (${skipped.length} blocks skipped by marker)`)
process.exitCode = failed === 0 ? 0 : 1
