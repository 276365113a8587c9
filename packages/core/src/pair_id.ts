/** One string per (key, owner), unambiguous whatever either contains: the key's length comes first. */
export function pairId(key: string, owner: string): string {
  return `${key.length}:${key}${owner}`
}
