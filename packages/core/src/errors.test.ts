import { describe, expect, test, vi } from 'vitest'
import { errors } from './index.js'

describe('errors', () => {
  test('internal helpers are not public API', () => {
    const surface = errors as Record<string, unknown>
    expect(surface.describeValue).toBeUndefined()
    expect(surface.toStorageError).toBeUndefined()
  })

  test('every error class has one constructor shape: (message, { cause, key, operation })', () => {
    const cause = new Error('boom')
    for (const Class of [errors.E_LOCK_NOT_OWNED, errors.E_LOCK_LOST, errors.E_LOCK_STORAGE_ERROR, errors.E_INVALID_ARGUMENT]) {
      const error = new Class('it failed', { cause, key: 'k', operation: 'release' })
      expect(error.message).toBe('it failed')
      expect(error.cause).toBe(cause)
      expect(error.key).toBe('k')
      expect(error.operation).toBe('release')
      expect(error.name).toBe(Class.name)
      expect(error.code).toBe(Class.name)
      expect(error).toBeInstanceOf(errors.VerrouError)
    }
  })

  test('isVerrouError recognises errors by code, also from a second copy of core', async () => {
    // A second, separately loaded copy of the module, as when an application and a driver each bundle core.
    vi.resetModules()
    const copy = (await import('./errors.js')) as typeof errors
    expect(copy.E_LOCK_NOT_OWNED).not.toBe(errors.E_LOCK_NOT_OWNED)
    const foreign = new copy.E_LOCK_NOT_OWNED('not yours', { key: 'k' })
    expect(errors.isVerrouError(foreign)).toBe(true)
    expect(errors.isVerrouError(foreign, 'E_LOCK_NOT_OWNED')).toBe(true)
    expect(errors.isVerrouError(foreign, 'E_LOCK_LOST')).toBe(false)
    expect(foreign instanceof errors.E_LOCK_NOT_OWNED).toBe(true)
    expect(foreign instanceof errors.VerrouError).toBe(true)
    expect(foreign instanceof errors.E_LOCK_STORAGE_ERROR).toBe(false)
  })

  test('look-alikes without the brand are not Verrou errors', () => {
    const fake = Object.assign(new Error('x'), { code: 'E_LOCK_NOT_OWNED' })
    expect(errors.isVerrouError(fake)).toBe(false)
    expect(fake instanceof errors.E_LOCK_NOT_OWNED).toBe(false)
    expect(errors.isVerrouError(null)).toBe(false)
    expect(errors.isVerrouError('E_LOCK_NOT_OWNED')).toBe(false)
  })

  test('a subclass a driver defines keeps ordinary instanceof', () => {
    class DriverError extends errors.E_LOCK_STORAGE_ERROR {}
    const plain = new errors.E_LOCK_STORAGE_ERROR('plain')
    expect(new DriverError('x') instanceof DriverError).toBe(true)
    expect(plain instanceof DriverError).toBe(false)
    expect(new DriverError('x') instanceof errors.E_LOCK_STORAGE_ERROR).toBe(true)
  })
})

test('E_LOCK_STORAGE_ERROR.from gives drivers the message style core uses', () => {
  const error = errors.E_LOCK_STORAGE_ERROR.from(
    { errno: -104 },
    { operation: 'acquire', key: 'k'.repeat(500), store: 'RedisStore' },
  )
  expect(error.message).toMatch(/^RedisStore failed to acquire lock "k{64}…\(500 chars\)": an object with errno$/)
  expect(error.cause).toEqual({ errno: -104 })
  expect(error.operation).toBe('acquire')
  expect(errors.E_LOCK_STORAGE_ERROR.from(new Error('down'), { operation: 'prune' }).message).toBe(
    'Lock store failed to prune: down',
  )
})

test('E_LOCK_STORAGE_ERROR.from takes a detail in place of the cause description, and keeps the cause itself', () => {
  const cause = new Error('ER_NO_SUCH_ROW')
  const error = errors.E_LOCK_STORAGE_ERROR.from(cause, {
    operation: 'acquire',
    key: 'invoice:1',
    store: 'MySQL lock store',
    detail: 'locks_floor has no row',
  })
  expect(error.message).toBe('MySQL lock store failed to acquire lock "invoice:1": locks_floor has no row')
  expect(error.cause).toBe(cause)
  expect(error.key).toBe('invoice:1')
})
