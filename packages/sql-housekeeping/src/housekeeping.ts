/** After a failed run, housekeeping waits at least this long: a server that is down is not hammered. */
const PAUSE_AFTER_FAILURE_MS = 1000

export interface HousekeepingOptions {
  /** Pause, in ms, between the end of one run and the start of the next. */
  interval: number
  /** One run: deletes a batch and says whether it was full (more may be waiting). */
  run: () => Promise<boolean>
  /** True once the connection the runs use was ended by its owner: housekeeping then stops for good. */
  connectionEnded: () => boolean
}

/**
 * Deletes ended rows in the background, so that the table holds the keys in use plus those that ended
 * within the grace, whether or not anyone is still acquiring. A run starts `interval` ms after the last
 * one ended (the first at once), from the store's first operation until `stop()`; a full batch is followed
 * by the next at once, so a backlog drains at the database's pace. The timer never keeps the process alive,
 * and a failure never reaches a lock operation: the next run tries again.
 */
export class Housekeeping {
  readonly #options: HousekeepingOptions
  #timer: ReturnType<typeof setTimeout> | undefined
  #started = false
  #stopped = false

  constructor(options: HousekeepingOptions) {
    this.#options = options
  }

  /** Starts the runs; later calls do nothing. */
  start(): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    this.#schedule(0)
  }

  /** Stops for good; a run in flight finishes, and no other starts. */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  #schedule(delay: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => void this.#tick(), delay)
    this.#timer.unref?.()
  }

  async #tick(): Promise<void> {
    let delay = this.#options.interval
    try {
      if (await this.#options.run()) delay = 0
    } catch {
      delay = Math.max(delay, PAUSE_AFTER_FAILURE_MS)
    }
    if (this.#options.connectionEnded()) this.stop()
    this.#schedule(delay)
  }
}
