import type { PoolOptions } from 'mysql2/promise'
import type pg from 'pg'

/** The shared servers the suite uses, from the same variables as the drivers' own tests. */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export function postgresConfig(): pg.ClientConfig {
  const url = process.env.POSTGRES_URL
  if (url) return { connectionString: url }
  return {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    password: process.env.PGPASSWORD,
    database: process.env.PGDATABASE ?? 'test',
  }
}

export const mysqlConfig: PoolOptions = {
  host: process.env.MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? 'root',
  password: process.env.MYSQL_PASSWORD ?? '',
  database: process.env.MYSQL_DATABASE ?? 'test',
}

/** A name no other run uses: parallel and repeated runs never share a table, prefix or key. */
export function uniqueName(label: string): string {
  return `${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}
