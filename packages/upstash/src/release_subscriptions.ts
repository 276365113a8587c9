import { errors, type Unsubscribe } from '@verrou/core'

/**
 * What the store uses of a subscription from `redis.subscribe()` of `@upstash/redis`: an event stream over
 * HTTP per channel. Declared here, not picked from the client's types, so that the store's types still
 * compile against clients that predate `subscribe`.
 */
export interface UpstashSubscriber {
  on(type: 'message', listener: (event: { channel: string; message: unknown }) => void): void
  on(type: 'subscribe', listener: (count: number) => void): void
  on(type: 'error', listener: (error: Error) => void): void
  unsubscribe(channels?: string[]): Promise<void>
}

export type SubscribeToChannels = (channels: string[]) => UpstashSubscriber

/**
 * How long a waiter waits for its event stream to be confirmed before it gives up and just polls: a
 * stream that cannot open must not hold up `acquire`.
 */
const SUBSCRIBE_TIMEOUT_MS = 2_000

/**
 * Reads a message heard on `heard` (a stream opened on `channel`): the owner it names, if any. A reader may
 * also take note of what else the message says (a hand-over).
 */
export type MessageReader = (channel: string, heard: string, message: unknown) => string | undefined

interface ChannelSubscription {
  subscriber: UpstashSubscriber
  listeners: Set<(next?: string) => void>
  ready: Promise<void>
}

/**
 * The release announcements of an Upstash store: one event stream per channel (the client opens one per
 * subscribed channel), shared by every listener of that channel in this process, closed when the last
 * one leaves. A stream that breaks is not reopened by the client: its waiters then poll at their retry
 * delay, as they would without announcements; the next waiter to join opens a new one.
 */
export class ReleaseSubscriptions {
  readonly #subscribe: SubscribeToChannels
  readonly #channels = new Map<string, ChannelSubscription>()

  constructor(subscribe: SubscribeToChannels) {
    this.#subscribe = subscribe
  }

  /**
   * Calls `listener(next)` for each announcement on `channel`; `next` names the waiter it is for, as `read`
   * finds it in the message (by default, the message is the owner id).
   */
  async listen(
    channel: string,
    key: string,
    listener: (next?: string) => void,
    read: MessageReader = announcedOwner,
  ): Promise<Unsubscribe> {
    let entry = this.#channels.get(channel)
    if (entry === undefined) {
      entry = this.#open(channel, read)
      this.#channels.set(channel, entry)
    }
    const subscription = entry
    // A wrapper per call, so the same function subscribed twice needs two unsubscribes.
    const member = (next?: string) => listener(next)
    subscription.listeners.add(member)
    const unsubscribe = () => {
      if (!subscription.listeners.delete(member) || subscription.listeners.size > 0) return
      if (this.#channels.get(channel) === subscription) this.#channels.delete(channel)
      subscription.subscriber.unsubscribe().catch(() => {})
    }
    try {
      await withTimeout(subscription.ready, SUBSCRIBE_TIMEOUT_MS, 'subscribing to releases timed out')
    } catch (error) {
      unsubscribe()
      // A stream that failed is dropped, so that the next waiter opens a new one.
      if (this.#channels.get(channel) === subscription) this.#channels.delete(channel)
      throw errors.E_LOCK_STORAGE_ERROR.from(error, { operation: 'subscribe to releases of', key, store: 'Upstash lock store' })
    }
    return unsubscribe
  }

  /** Ends every stream this store opened. */
  close(): void {
    const open = [...this.#channels.values()]
    this.#channels.clear()
    for (const subscription of open) subscription.subscriber.unsubscribe().catch(() => {})
  }

  #open(channel: string, read: MessageReader): ChannelSubscription {
    const subscriber = this.#subscribe([channel])
    if (subscriber === null || typeof subscriber !== 'object' || typeof subscriber.on !== 'function') {
      const failed = Promise.reject(new Error('connection.subscribe() did not return an @upstash/redis subscriber'))
      failed.catch(() => {})
      return { subscriber: { on() {}, unsubscribe: async () => {} }, listeners: new Set(), ready: failed }
    }
    const listeners = new Set<(next?: string) => void>()
    const ready = new Promise<void>((resolve, reject) => {
      subscriber.on('subscribe', () => resolve())
      subscriber.on('error', reject)
    })
    // Settled (or timed out) by `listen`; an error after that must not be an unhandled rejection.
    ready.catch(() => {})
    subscriber.on('message', ({ channel: heard, message }) => {
      const next = read(channel, heard, message)
      for (const listener of [...listeners]) listener(next)
    })
    return { subscriber, listeners, ready }
  }
}

/**
 * The owner id an announcement names, as the client hands it over. The client JSON-decodes a message when
 * it can, so an owner id that reads as JSON ("42") arrives decoded, and cannot be told apart from another
 * owner ("042" and "42" both arrive as 42): it names nobody, which wakes the first waiter on the key in
 * each listening process to ask. Never a lost wake-up. (Channels are letters, digits and one colon, see
 * streamChannel, so the client's splitting of the event at its commas never cuts one.)
 */
export function announcedOwner(channel: string, heard: string, message: unknown): string | undefined {
  if (heard !== channel || typeof message !== 'string' || message === '') return undefined
  return message
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
