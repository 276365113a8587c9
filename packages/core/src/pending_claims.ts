import { pairId } from './pair_id.js'

/**
 * For a store that answers a handed-over lock without a round trip (see `HandOver`): the share of the claim
 * window to wait before claiming. A holder that releases sooner (most, on a busy key) never sends the
 * claim, and the rest of the window leaves the claim ample time to land.
 */
const CLAIM_AFTER_WINDOW_SHARE = 0.25

/**
 * When to claim a lock handed over with `window` ms of its claim window left: a quarter into it, unless
 * the ttl asked for is shorter than the window, which would then hold the lock longer than asked (a holder
 * that died would keep it that long): at once, to bring the lease down to the ttl.
 */
export function claimDelay(ttl: number | null, window: number): number {
  return ttl !== null && ttl < window ? 0 : window * CLAIM_AFTER_WINDOW_SHARE
}

/**
 * The claims a store has put off (see `claimDelay`), per key and owner, so that the owner's release can
 * call off the one not sent yet: the release then ends (or hands on) the grant as it stands.
 */
export class PendingClaims {
  readonly #cancels = new Map<string, () => void>()

  /**
   * Runs `claim` after `delay` ms, unless `owner` releases `key` first (see `cancel`). Settles as `claim`
   * does; `false` when called off.
   */
  schedule(key: string, owner: string, delay: number, claim: () => Promise<boolean>): Promise<boolean> {
    const pair = pairId(key, owner)
    return new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#cancels.delete(pair)
        claim().then(resolve, reject)
      }, delay)
      this.#cancels.get(pair)?.()
      // Settled a macrotask later, so that `Lock` has recorded the release that called it off by then.
      this.#cancels.set(pair, () => {
        clearTimeout(timer)
        setTimeout(() => resolve(false), 0)
      })
    })
  }

  /** Calls off `owner`'s claim of `key` not sent yet, if any: it settles `false`. For the store's release. */
  cancel(key: string, owner: string): void {
    if (this.#cancels.size === 0) return
    const pair = pairId(key, owner)
    const cancel = this.#cancels.get(pair)
    if (cancel === undefined) return
    this.#cancels.delete(pair)
    cancel()
  }
}
