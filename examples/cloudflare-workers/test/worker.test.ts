/**
 * Runs dist/worker.js (built by `pnpm build`, which `pnpm test` runs first) in workerd, the Workers runtime,
 * through Miniflare, against the local Upstash REST server in front of a real Redis.
 */
import { Redis } from '@upstash/redis'
import { redisUrl, uniqueName } from '@verrou/test-utils/connection-settings'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, expect, test } from 'vitest'

let server: UpstashRestServer
let redis: Redis
/** Two runtimes loading the same Worker: two isolates, as in two Cloudflare locations. */
let runtimes: Miniflare[]

function startWorkerd(): Miniflare {
  return new Miniflare({
    modules: true,
    scriptPath: new URL('../dist/worker.js', import.meta.url).pathname,
    compatibilityDate: '2025-07-01',
    bindings: { UPSTASH_REDIS_REST_URL: server.url, UPSTASH_REDIS_REST_TOKEN: server.token, UPSTASH_DISABLE_TELEMETRY: '1' },
  })
}

beforeAll(async () => {
  server = await startUpstashRestServer({ redisUrl, token: uniqueName('workers-test') })
  redis = new Redis({ url: server.url, token: server.token, enableTelemetry: false })
  runtimes = [startWorkerd(), startWorkerd()]
  await Promise.all(runtimes.map((runtime) => runtime.ready))
})

/** Reports the tests used, so their keys can be removed from the shared Redis afterwards. */
const used: string[] = []
const reportName = (label: string) => {
  const id = uniqueName(label)
  used.push(id)
  return id
}

afterAll(async () => {
  await Promise.all((runtimes ?? []).map((runtime) => runtime.dispose()))
  const keys = used.flatMap((id) => [
    `reports:${id}`,
    ...['rebuilds', 'overlaps', 'active'].map((name) => `reports:${id}:${name}`),
  ])
  if (keys.length > 0) await redis?.del(...keys)
  await server?.close()
})

async function rebuild(runtime: Miniflare, reportId: string) {
  const response = await runtime.dispatchFetch(`https://reports.example/rebuild?report=${reportId}`, { method: 'POST' })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

async function counters(reportId: string) {
  const [rebuilds, overlaps, active] = await redis.mget<(number | null)[]>(
    `reports:${reportId}:rebuilds`,
    `reports:${reportId}:overlaps`,
    `reports:${reportId}:active`,
  )
  return { rebuilds: rebuilds ?? 0, overlaps: overlaps ?? 0, active: active ?? 0 }
}

test('concurrent requests in two isolates: the rebuild runs exactly once while the lock is held', async () => {
  const reportId = reportName('race')
  const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => rebuild(runtimes[i % 2]!, reportId)))
  const rebuilt = responses.filter((response) => response.status === 200)
  expect(rebuilt).toHaveLength(1)
  expect(rebuilt[0]!.body).toMatchObject({ status: 'rebuilt', reportId, rebuilds: 1 })
  expect(responses.filter((response) => response.status === 409).map((response) => response.body)).toEqual(
    Array.from({ length: 7 }, () => ({ status: 'busy' })),
  )
  expect(await counters(reportId)).toEqual({ rebuilds: 1, overlaps: 0, active: 0 })
})

test('once the lock is released, the next request rebuilds again, with a higher fencing token', async () => {
  const reportId = reportName('again')
  const first = await rebuild(runtimes[0]!, reportId)
  const second = await rebuild(runtimes[1]!, reportId)
  expect([first.status, second.status]).toEqual([200, 200])
  expect(second.body.rebuilds).toBe(2)
  expect(second.body.fencingToken).toBeGreaterThan(first.body.fencingToken as number)
  expect(await counters(reportId)).toEqual({ rebuilds: 2, overlaps: 0, active: 0 })
})

test('bad requests are refused before any lock is taken', async () => {
  const [runtime] = runtimes
  expect((await runtime!.dispatchFetch('https://reports.example/rebuild?report=x')).status).toBe(405)
  expect((await runtime!.dispatchFetch('https://reports.example/rebuild?report=a%20b', { method: 'POST' })).status).toBe(400)
  expect((await runtime!.dispatchFetch('https://reports.example/other', { method: 'POST' })).status).toBe(404)
})
