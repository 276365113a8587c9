import { createServer } from 'node:net'
import { expect, test } from 'vitest'
import { accepts, freePort } from './free_port.js'

test('freePort gives a port nothing listens on, that can then be listened on', async () => {
  const port = await freePort()
  expect(port).toBeGreaterThan(0)
  expect(await accepts(port)).toBe(false)
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  try {
    expect(await accepts(port)).toBe(true)
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
  expect(await accepts(port)).toBe(false)
})
