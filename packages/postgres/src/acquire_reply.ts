import { type AcquireResult, errors } from '@verrou/core'

/** What an acquire statement returns, for the mutex and for shared locks alike. */
export interface AcquireReplyColumns {
  /** The granted fencing token (bigint, as text), or `null` when refused. */
  token: string | null
  expiresIn: number | null
  position: number | null
}

/** The reply as `LockStore.acquire` gives it; a token that is not a positive safe integer is a storage error. */
export function toAcquireResult(reply: AcquireReplyColumns, key: string, store: string): AcquireResult {
  if (reply.token !== null) {
    const fencingToken = Number(reply.token)
    if (!Number.isSafeInteger(fencingToken) || fencingToken < 1) {
      throw errors.E_LOCK_STORAGE_ERROR.from(reply.token, {
        operation: 'acquire',
        key,
        store,
        detail: `the server returned the unusable fencing token ${JSON.stringify(reply.token)}`,
      })
    }
    return { acquired: true, fencingToken }
  }
  const refused: AcquireResult = { acquired: false }
  if (reply.expiresIn !== null) refused.expiresIn = reply.expiresIn
  if (reply.position !== null) refused.position = reply.position
  return refused
}
