import type { Logger } from '@verrou/core'

/**
 * What a store does on a server that may evict keys under memory pressure: refuse every operation with a
 * storage error (`'throw'`), or log a warning once and carry on (`'warn'`).
 */
export type EvictionPolicyAction = 'throw' | 'warn'

export const EVICTION_POLICY_ACTIONS: readonly EvictionPolicyAction[] = ['throw', 'warn']

/** One server's eviction settings, as its `INFO memory` reports them. */
export interface MemoryPolicy {
  /** `maxmemory_policy`: `noeviction`, `allkeys-lru`, `volatile-ttl`, ... */
  policy: string
  /** `maxmemory` in bytes; 0 is no limit. Undefined when not reported. */
  maxmemory: number | undefined
}

/** Reads the eviction settings from an `INFO memory` reply; `undefined` when it does not name a policy. */
export function parseMemoryInfo(info: unknown): MemoryPolicy | undefined {
  if (typeof info !== 'string') return undefined
  const fields = new Map<string, string>()
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
  }
  const policy = fields.get('maxmemory_policy')
  if (policy === undefined || policy === '') return undefined
  const maxmemory = Number(fields.get('maxmemory'))
  return { policy, maxmemory: fields.has('maxmemory') && Number.isFinite(maxmemory) ? maxmemory : undefined }
}

/**
 * Whether a server with these settings may delete a live key to make room. Without a memory limit
 * (`maxmemory 0`) Redis never evicts, whatever the policy says.
 */
export function mayEvict({ policy, maxmemory }: MemoryPolicy): boolean {
  return policy !== 'noeviction' && maxmemory !== 0
}

/**
 * A Redis error reply that means "you may not ask this" (unknown, renamed or forbidden command), as
 * ioredis and @upstash/redis word it. Any other failure (a connection, a timeout) says nothing about
 * the server and is worth asking again.
 */
function isRefusal(error: unknown): boolean {
  return error instanceof Error && /^(?:Command failed: )?(?:ERR|NOPERM)\b/.test(error.message)
}

export interface EvictionCheckOptions {
  storeName: string
  action: EvictionPolicyAction
  logger: Logger
  /** One `INFO memory` reply per server that holds locks (every master of a Cluster). */
  readMemoryInfo: () => Promise<unknown[]>
}

/**
 * Finds out once per store whether the server may evict lock keys or fencing counters, before the
 * store's first operation. A server that evicts could drop a held lock (two holders) or a counter.
 *
 * - every server says `noeviction` (or has no memory limit): checked, nothing more happens;
 * - one may evict: `'warn'` logs once and is done; `'throw'` fails the operation and asks again at the
 *   next one, so fixing the server's setting is enough, no restart needed;
 * - the server refuses to say (INFO forbidden, or no policy in its reply): nothing can be known; logged
 *   once at info level and not asked again;
 * - the question itself failed (connection down): the operation fails, and the next one asks again.
 */
export class EvictionCheck {
  readonly #options: EvictionCheckOptions
  #settled = false
  #inFlight: Promise<void> | undefined

  constructor(options: EvictionCheckOptions) {
    this.#options = options
  }

  /** Resolves when the store may go ahead; `undefined` once settled, so later operations send nothing more. */
  ensure(): Promise<void> | undefined {
    if (this.#settled) return undefined
    this.#inFlight ??= this.#check().finally(() => {
      this.#inFlight = undefined
    })
    return this.#inFlight
  }

  async #check(): Promise<void> {
    const { storeName, action, logger, readMemoryInfo } = this.#options
    let replies: unknown[]
    try {
      replies = await readMemoryInfo()
    } catch (error) {
      if (!isRefusal(error)) throw error
      this.#settled = true
      logger.info({ err: error }, `verrou: ${storeName} cannot read the server's maxmemory-policy; make sure it is noeviction`)
      return
    }
    const policies = replies.map(parseMemoryInfo)
    const evicting = policies.find((policy) => policy !== undefined && mayEvict(policy))
    if (evicting === undefined) {
      this.#settled = true
      if (policies.includes(undefined)) {
        logger.info({}, `verrou: ${storeName}: the server does not report its maxmemory-policy; make sure it is noeviction`)
      }
      return
    }
    const message = evictionMessage(storeName, evicting)
    if (action === 'throw') throw new Error(`${message}. Set maxmemory-policy to noeviction, or pass onEvictionPolicy: 'warn'`)
    this.#settled = true
    logger.warn({ maxmemoryPolicy: evicting.policy, maxmemory: evicting.maxmemory }, `verrou: ${message}`)
  }
}

function evictionMessage(storeName: string, { policy, maxmemory }: MemoryPolicy): string {
  const limit = maxmemory === undefined ? '' : `, maxmemory ${maxmemory} bytes`
  return (
    `${storeName}: the server may evict keys under memory pressure (maxmemory-policy ${policy}${limit}), ` +
    'which can delete a held lock (two holders at once) or a fencing counter'
  )
}

/** Where warnings go when no logger is given: a server that may lose locks must not go unnoticed. */
export const consoleLogger: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (details, message) => console.warn(message, details),
  error: (details, message) => console.error(message, details),
}
