/**
 * Runs tasks one after another. On a lone connection (not a pool) every statement of the store goes through
 * one gate, so that no statement lands inside a shared-lock transaction open on the same session: it would
 * commit or roll back with that transaction instead of on its own.
 */
export class ConnectionGate {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task)
    this.#tail = result.catch(() => undefined)
    return result
  }
}
