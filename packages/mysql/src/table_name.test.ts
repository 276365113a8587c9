import { errors } from '@verrou/core'
import { describe, expect, test } from 'vitest'
import { resolveTables } from './table_name.js'

describe('resolveTables', () => {
  test('quotes a plain or database-qualified name and derives the floor table', () => {
    expect(resolveTables('verrou_locks')).toEqual({ locks: '`verrou_locks`', floor: '`verrou_locks_floor`' })
    expect(resolveTables('app.locks$1')).toEqual({ locks: '`app`.`locks$1`', floor: '`app`.`locks$1_floor`' })
    expect(resolveTables('x'.repeat(58)).floor).toBe(`\`${'x'.repeat(58)}_floor\``)
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
