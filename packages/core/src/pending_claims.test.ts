import { describe, expect, test } from 'vitest'
import { claimDelay, PendingClaims } from './pending_claims.js'

describe('claimDelay', () => {
  test('a quarter into the window, or at once when the ttl asked for is shorter than the window', () => {
    expect(claimDelay(30_000, 2_000)).toBe(500)
    expect(claimDelay(null, 2_000)).toBe(500)
    expect(claimDelay(1_000, 2_000)).toBe(0)
  })
})

describe('PendingClaims', () => {
  test('runs the claim after the delay and settles as it does', async () => {
    const claims = new PendingClaims()
    let sent = 0
    const claimed = claims.schedule('k', 'a', 20, async () => {
      sent++
      return true
    })
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(sent).toBe(0)
    await expect(claimed).resolves.toBe(true)
    expect(sent).toBe(1)
    const failing = claims.schedule('k', 'a', 0, () => Promise.reject(new Error('down')))
    await expect(failing).rejects.toThrow('down')
  })

  test('a cancel before the delay keeps the claim from being sent and settles it false, a macrotask later', async () => {
    const claims = new PendingClaims()
    let sent = 0
    const claimed = claims.schedule('k', 'a', 20, async () => {
      sent++
      return true
    })
    let settled = false
    void claimed.then(() => {
      settled = true
    })
    claims.cancel('k', 'a')
    await Promise.resolve()
    expect(settled).toBe(false)
    await expect(claimed).resolves.toBe(false)
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(sent).toBe(0)
  })

  test('a cancel names one key and owner: others still claim', async () => {
    const claims = new PendingClaims()
    // The key's length keeps ("ab", "c") apart from ("a", "bc").
    const other = claims.schedule('ab', 'c', 10, async () => true)
    const kept = claims.schedule('k', 'b', 10, async () => true)
    claims.cancel('a', 'bc')
    claims.cancel('k', 'a')
    await expect(other).resolves.toBe(true)
    await expect(kept).resolves.toBe(true)
  })
})
