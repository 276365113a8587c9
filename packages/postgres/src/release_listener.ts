import { UnheardAnnouncements, type Unsubscribe } from '@verrou/core'
import type { Client } from 'pg'
import { quoteIdentifier } from './table_name.js'
import { type HeardHandOver, parseAnnouncement } from './text_bytes.js'

/** Told of a release; `next` names the waiter the store says should try now, when it named one. */
export type ReleaseHandler = (next?: string) => void

/** Told of each notification naming `owner` on `keyPayload`, with the hand-over it carries, if any. */
export type NamedHandler = (keyPayload: string, owner: string, handOver: HeardHandOver | undefined) => void

const FIRST_RECONNECT_DELAY_MS = 100
const MAX_RECONNECT_DELAY_MS = 5000

/**
 * One LISTENing session per store, opened on the first subscription and kept until `close()`. It hands
 * each notification on its channels to the listeners of the key it names, with the owner of the
 * next waiter when the notification names one. If the session dies it is reopened with backoff while
 * anyone listens; as releases may have gone unheard meanwhile, every listener is woken once it is back,
 * unnamed (a spurious wake-up costs a waiter one early retry, nothing more).
 */
export class ReleaseListener {
  readonly #createClient: () => Client
  readonly #channels: readonly string[]
  readonly #listeners = new Map<string, Set<ReleaseHandler>>()
  #client: Client | undefined
  #connecting: Promise<void> | undefined
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #reconnectDelay = FIRST_RECONNECT_DELAY_MS
  #closed = false
  /** Since when (performance.now()) the live session has heard every notification: its LISTENs' replies. */
  #listeningSince: number | undefined
  /** Per payload, the notifications heard while the key had no listener here, for the next one. */
  readonly #unheard = new UnheardAnnouncements()

  readonly #onNamed: NamedHandler

  /**
   * `channels`: the table's channel and the store's inbox; a notification on either is dispatched alike.
   * `onNamed` hears, before the waiter's listeners, every notification that names a waiter, with the
   * hand-over when a release gave it the lock.
   */
  constructor(createClient: () => Client, channels: readonly string[], onNamed: NamedHandler = () => {}) {
    this.#createClient = createClient
    this.#channels = channels
    this.#onNamed = onNamed
  }

  /** Resolves once LISTEN is active on a live session. */
  async subscribe(payload: string, listener: ReleaseHandler): Promise<Unsubscribe> {
    if (this.#closed) throw new Error('The store was closed: it no longer listens for releases')
    let listeners = this.#listeners.get(payload)
    if (!listeners) {
      listeners = new Set()
      this.#listeners.set(payload, listeners)
    }
    const own = listeners
    // Wrapped so the same function can subscribe twice and be removed once per subscription.
    const entry: ReleaseHandler = (next) => listener(next)
    own.add(entry)
    // Heard before this listener came: passed on now, before the subscription resolves (see heardSince).
    for (const next of this.#unheard.take(payload)) entry(next)
    const unsubscribe = () => {
      own.delete(entry)
      if (own.size === 0 && this.#listeners.get(payload) === own) this.#listeners.delete(payload)
    }
    try {
      await this.#ensureConnected()
    } catch (error) {
      unsubscribe()
      throw error
    }
    // Everything the session heard since it listened reached this listener, or was kept for it.
    const heardSince = this.#listeningSince
    return heardSince === undefined ? unsubscribe : Object.assign(unsubscribe, { heardSince })
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    this.#listeners.clear()
    this.#unheard.clear()
    this.#listeningSince = undefined
    await this.#connecting?.catch(() => undefined)
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => undefined)
  }

  #ensureConnected(): Promise<void> {
    if (this.#client) return Promise.resolve()
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined
    })
    return this.#connecting
  }

  async #connect(): Promise<void> {
    const client = this.#createClient()
    // Without an 'error' handler a dropped session would crash the process.
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', (message) => {
      if (!this.#channels.includes(message.channel) || message.payload === undefined) return
      const { keyPayload, next, handOver } = parseAnnouncement(message.payload)
      if (next !== undefined) this.#onNamed(keyPayload, next, handOver)
      this.#dispatch(keyPayload, next)
    })
    try {
      await client.connect()
      for (const channel of this.#channels) await client.query(`LISTEN ${quoteIdentifier(channel)}`)
    } catch (error) {
      client.end().catch(() => undefined)
      throw error
    }
    if (this.#closed) {
      await client.end().catch(() => undefined)
      throw new Error('The store was closed while it started listening for releases')
    }
    // An optimisation must never keep the process alive: a forgotten close() does not hang the exit.
    const socket = client.connection.stream as unknown as { unref?: () => void }
    socket.unref?.()
    this.#client = client
    this.#listeningSince = performance.now()
    this.#reconnectDelay = FIRST_RECONNECT_DELAY_MS
  }

  #dispatch(payload: string, next?: string): void {
    const listeners = this.#listeners.get(payload)
    if (!listeners) {
      this.#unheard.keep(payload, next)
      return
    }
    for (const listener of [...listeners]) {
      try {
        listener(next)
      } catch {
        // A listener's failure is its own; the others still hear about the release.
      }
    }
  }

  #lost(client: Client): void {
    if (this.#client !== client) return
    this.#client = undefined
    this.#listeningSince = undefined
    client.end().catch(() => undefined)
    this.#scheduleReconnect()
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#listeners.size === 0 || this.#reconnectTimer !== undefined) return
    const timer = setTimeout(() => {
      this.#reconnectTimer = undefined
      if (this.#closed || this.#listeners.size === 0) return
      this.#ensureConnected().then(
        () => this.#wakeAll(),
        () => {
          this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, MAX_RECONNECT_DELAY_MS)
          this.#scheduleReconnect()
        },
      )
    }, this.#reconnectDelay)
    timer.unref?.()
    this.#reconnectTimer = timer
  }

  #wakeAll(): void {
    for (const payload of [...this.#listeners.keys()]) this.#dispatch(payload)
  }
}
