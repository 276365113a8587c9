import { errors } from '@verrou/core'
import { describe, expect, test } from 'vitest'
import { resolveTables } from './table_name.js'

describe('resolveTables', () => {
  test('quotes a plain or database-qualified name and derives the floor and shared tables', () => {
    expect(resolveTables('verrou_locks')).toEqual({
      locks: '`verrou_locks`',
      floor: '`verrou_locks_floor`',
      shared: '`verrou_locks_shared`',
    })
    expect(resolveTables('app.locks$1')).toEqual({
      locks: '`app`.`locks$1`',
      floor: '`app`.`locks$1_floor`',
      shared: '`app`.`locks$1_shared`',
    })
    expect(resolveTables('x'.repeat(57)).shared).toBe(`\`${'x'.repeat(57)}_shared\``)
    expect(resolveTables('x'.repeat(58)).floor).toBe(`\`${'x'.repeat(58)}_floor\``)
    // Still a valid mutex table; only shared locks are unavailable on it (the identifier would be 65 characters).
    expect(resolveTables('x'.repeat(58)).shared).toBeUndefined()
  })

  test.each([
    '',
    ' ',
    'locks; DROP TABLE users; --',
    'locks`; DROP TABLE users; --',
    "locks' OR '1'='1",
    'locks"',
    'locks--',
    'locks/*x*/',
    'a b',
    'a.b.c',
    '.locks',
    'locks.',
    '1locks',
    'lócks',
    'locks\u0000',
    'x'.repeat(59),
  ])('refuses %j with E_INVALID_ARGUMENT', (name) => {
    expect(() => resolveTables(name)).toThrow(errors.E_INVALID_ARGUMENT)
  })

  test('refuses a non-string', () => {
    expect(() => resolveTables(42)).toThrow(errors.E_INVALID_ARGUMENT)
  })
})
