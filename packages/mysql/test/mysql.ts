import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import mysql, { type Connection, type Pool, type PoolOptions } from 'mysql2/promise'

/** The MariaDB/MySQL the tests run against: MYSQL_* variables, defaulting to the local MariaDB. */
export const connectionOptions: PoolOptions = {
  host: process.env.MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? 'root',
  password: process.env.MYSQL_PASSWORD ?? '',
  database: process.env.MYSQL_DATABASE ?? 'test',
}

export function createTestPool(options: PoolOptions = {}): Pool {
  return mysql.createPool({ ...connectionOptions, connectionLimit: 10, ...options })
}

export function createTestConnection(options: PoolOptions = {}): Promise<Connection> {
  return mysql.createConnection({ ...connectionOptions, ...options })
}

/** A table name no other test run uses, so parallel runs never collide. */
export function uniqueTableName(label: string): string {
  return `verrou_test_${label}_${randomBytes(5).toString('hex')}`
}

export async function dropTables(db: Pool | Connection, tableName: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS \`${tableName}\`, \`${tableName}_floor\``)
}

/** A local port nothing listens on: connecting to it is refused at once. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}
