// Finds the TypeScript code blocks of a Markdown file, with the docs-test marker (an HTML comment on the line
// right above the fence, invisible on GitHub and npm) that changes how a block is checked:
//   <!-- docs-test: skip (why) -->        not compiled; the reason is required and printed
//   <!-- docs-test: continues (why) -->   compiled as one module with the block before it in the same file
//   <!-- docs-test: not-edge (why) -->    compiled with tsc --strict, but not in the edge configuration

const fence = /^```(ts|typescript)\s*$/
const marker = /^<!--\s*docs-test:\s*(skip|continues|not-edge)\b\s*(.*?)\s*-->\s*$/

/**
 * `line` of each block is the 1-based line of its first code line.
 * @returns {{ file: string, line: number, code: string, mode: 'check' | 'skip' | 'continues' | 'not-edge', reason: string }[]}
 */
export function typescriptBlocks(file, text) {
  const lines = text.split('\n')
  const blocks = []
  for (let index = 0; index < lines.length; index++) {
    if (!fence.test(lines[index])) continue
    const above = lines[index - 1]?.match(marker)
    const mode = above?.[1] ?? 'check'
    const reason = (above?.[2] ?? '').replace(/^[—–:-]\s*/, '').replace(/^\((.*)\)$/, '$1')
    if (mode !== 'check' && reason === '') throw new Error(`${file}:${index}: a docs-test marker needs a reason`)
    const start = index + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
    if (end === lines.length) throw new Error(`${file}:${index + 1}: code block is never closed`)
    blocks.push({ file, line: start + 1, code: lines.slice(start, end).join('\n'), mode, reason })
    index = end
  }
  return blocks
}

/**
 * Groups blocks into the modules that get compiled: each block is its own module unless marked `continues`.
 * @returns {{ segments: { block: object, firstLine: number }[], code: string }[]}
 */
export function snippetModules(blocks, { edge = false } = {}) {
  const modules = []
  let current
  for (const block of blocks) {
    if (block.mode === 'skip' || (edge && block.mode === 'not-edge')) continue
    if (block.mode === 'continues' && current !== undefined) {
      current.segments.push({ block, firstLine: current.code.split('\n').length + 1 })
      current.code += `\n${block.code}`
      continue
    }
    if (block.mode === 'continues') throw new Error(`${block.file}:${block.line}: "continues" but no block before it`)
    current = { segments: [{ block, firstLine: 1 }], code: block.code }
    modules.push(current)
  }
  return modules
}
