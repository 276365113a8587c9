import { createRequire } from 'node:module'
import type { PostgresConnection } from '@verrou/postgres'

/**
 * pg's Pool. pg ships no types and the bench has no @types/pg of its own, so the type comes from what
 * @verrou/postgres accepts, and the config type lists the few settings the bench passes.
 */
export type PgPool = Extract<PostgresConnection, { totalCount: number }>

export interface PgPoolConfig {
  host: string
  port: number
  user: string
  password: string | undefined
  database: string
  max: number
  connectionTimeoutMillis: number
}

export const PgPool = createRequire(import.meta.url)('pg').Pool as new (config: PgPoolConfig) => PgPool
