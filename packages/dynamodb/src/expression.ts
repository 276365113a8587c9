import type { AttributeValue } from '@aws-sdk/client-dynamodb'

/**
 * Builds one UpdateItem's expressions. Every attribute name and map key (owner ids included) goes through
 * a placeholder, and every value through a value placeholder, so no user string is ever parsed as syntax.
 */
export class Expression {
  readonly #names = new Map<string, string>()
  readonly #values: Record<string, AttributeValue> = {}
  readonly #sets: string[] = []
  readonly #removes: string[] = []
  readonly #conditions: string[] = []

  /** The placeholder path of `segments` (attribute, then map keys). */
  path(...segments: string[]): string {
    return segments
      .map((segment) => {
        let placeholder = this.#names.get(segment)
        if (placeholder === undefined) {
          placeholder = `#n${this.#names.size}`
          this.#names.set(segment, placeholder)
        }
        return placeholder
      })
      .join('.')
  }

  value(value: AttributeValue): string {
    const placeholder = `:v${Object.keys(this.#values).length}`
    this.#values[placeholder] = value
    return placeholder
  }

  set(path: string, expression: string): this {
    this.#sets.push(`${path} = ${expression}`)
    return this
  }

  remove(path: string): this {
    this.#removes.push(path)
    return this
  }

  when(condition: string): this {
    this.#conditions.push(`(${condition})`)
    return this
  }

  /** The UpdateItem fields (no condition when none was added). */
  build() {
    const update = [
      this.#sets.length === 0 ? '' : `SET ${this.#sets.join(', ')}`,
      this.#removes.length === 0 ? '' : `REMOVE ${this.#removes.join(', ')}`,
    ]
      .filter((part) => part !== '')
      .join(' ')
    return {
      UpdateExpression: update,
      ...(this.#conditions.length === 0 ? {} : { ConditionExpression: this.#conditions.join(' AND ') }),
      ExpressionAttributeNames: Object.fromEntries([...this.#names].map(([name, placeholder]) => [placeholder, name])),
      ...(Object.keys(this.#values).length === 0 ? {} : { ExpressionAttributeValues: this.#values }),
    }
  }
}

export const number = (value: number): AttributeValue => ({ N: String(value) })
