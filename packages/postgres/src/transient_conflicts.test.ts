import { describe, expect, test } from 'vitest'
import { CONFLICT_ATTEMPTS, retryingConflicts } from './transient_conflicts.js'

/** An error shaped like pg's, with a SQLSTATE. */
const serverError = (code: string) => Object.assign(new Error(`failed with ${code}`), { code })

/** A statement that fails with `errors` in turn, then answers 'done'; counts its runs. */
function statementFailing(...errors: Error[]) {
  const calls = { count: 0 }
  const run = async () => {
    calls.count++
    const error = errors.shift()
    if (error !== undefined) throw error
    return 'done'
  }
  return { run, calls }
}

describe('retryingConflicts', () => {
  test('runs a statement again after a serialization failure or a deadlock', async () => {
    const { run, calls } = statementFailing(serverError('40001'), serverError('40P01'), serverError('40001'))
    expect(await retryingConflicts(run)).toBe('done')
    expect(calls.count).toBe(4)
  })

  test(`gives up after ${CONFLICT_ATTEMPTS} attempts with the last error, for the caller to report as a storage error`, async () => {
    const failures = Array.from({ length: CONFLICT_ATTEMPTS + 5 }, () => serverError('40001'))
    const { run, calls } = statementFailing(...failures)
    await expect(retryingConflicts(run)).rejects.toMatchObject({ code: '40001' })
    expect(calls.count).toBe(CONFLICT_ATTEMPTS)
  })

  test('never repeats any other failure: a unique violation, a dropped connection, a missing table', async () => {
    for (const error of [serverError('23505'), new Error('Connection terminated'), serverError('42P01')]) {
      const { run, calls } = statementFailing(error)
      await expect(retryingConflicts(run)).rejects.toBe(error)
      expect(calls.count).toBe(1)
    }
  })
})
