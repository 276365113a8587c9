/** A growable list of float samples: millions of cycle latencies without millions of boxed numbers. */
export class Samples {
  #values = new Float64Array(1024)
  #length = 0

  get length(): number {
    return this.#length
  }

  push(value: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#length++] = value
  }

  /** A sorted copy. */
  sorted(): Float64Array {
    return this.#values.slice(0, this.#length).sort()
  }
}

export interface Distribution {
  count: number
  p50: number
  p99: number
  max: number
}

/** Nearest-rank percentiles: always a value that was actually measured. */
export function distribution(samples: Samples): Distribution {
  const sorted = samples.sorted()
  const at = (p: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!)
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) }
}

/** The middle value (the mean of the two middle ones for an even count); NaN for no values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
