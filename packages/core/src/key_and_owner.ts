import { describeValue, E_INVALID_ARGUMENT } from './errors.js'

/** Matches a UTF-16 surrogate half without its partner: such strings have no exact UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Keys are any non-empty, well-formed string; stores keep them exact (case, whitespace, any character).
 * Lone surrogates are refused because stores that keep keys as UTF-8 would merge such keys into one lock.
 */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new E_INVALID_ARGUMENT(`A lock key must be a non-empty string, got ${describeValue(key)}`)
  }
  if (LONE_SURROGATE.test(key)) {
    throw new E_INVALID_ARGUMENT('A lock key must be well-formed Unicode (it has a lone surrogate)')
  }
}

/**
 * Owners must be non-empty and well-formed: stores keep them as UTF-8, where two owners with different lone
 * surrogates would become one, letting one release the other's lock.
 */
export function validateOwner(owner: unknown): asserts owner is string {
  if (typeof owner !== 'string' || owner.length === 0) {
    throw new E_INVALID_ARGUMENT('A lock owner must be a non-empty string')
  }
  if (LONE_SURROGATE.test(owner)) {
    throw new E_INVALID_ARGUMENT('A lock owner must be well-formed Unicode (it has a lone surrogate)')
  }
}
