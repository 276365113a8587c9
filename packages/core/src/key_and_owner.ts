import { describeValue } from './describe_value.js'
import { E_INVALID_ARGUMENT } from './errors.js'

/** Matches a UTF-16 surrogate half without its partner: such strings have no exact UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Keys and owners are any non-empty, well-formed string; stores keep them exact (case, whitespace, any
 * character). Lone surrogates are refused: stores that keep strings as UTF-8 would merge two such keys into
 * one lock, or two such owners into one (letting one release the other's lock).
 */
export function validateKeyOrOwner(value: unknown, what: 'key' | 'owner'): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new E_INVALID_ARGUMENT(`A lock ${what} must be a non-empty string, got ${describeValue(value)}`)
  }
  if (!isWellFormed(value)) {
    throw new E_INVALID_ARGUMENT(`A lock ${what} must be well-formed Unicode (it has a lone surrogate)`)
  }
}

/** String.prototype.isWellFormed where the runtime has it (native, no regular expression), else the pattern. */
const isWellFormed: (value: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (value) => (value as string & { isWellFormed(): boolean }).isWellFormed()
    : (value) => !LONE_SURROGATE.test(value)
