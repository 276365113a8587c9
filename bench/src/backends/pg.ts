import { createRequire } from 'node:module'
import type { PostgresConnection } from '@verrou/postgres'
import type { PostgresSettings } from '@verrou/test-utils/connection-settings'

/**
 * pg's Pool. pg ships no types and the bench has no @types/pg of its own, so the type comes from what
 * @verrou/postgres accepts, and the config type lists the few settings the bench passes.
 */
export type PgPool = Extract<PostgresConnection, { totalCount: number }>

export type PgPoolConfig = PostgresSettings & {
  max: number
  connectionTimeoutMillis: number
}

export const PgPool = createRequire(import.meta.url)('pg').Pool as new (config: PgPoolConfig) => PgPool
