import { randomBytes } from 'node:crypto'
import { mysqlConfig } from '@verrou/test-utils/connection-settings'
import { freePort } from '@verrou/test-utils/free-port'
import mysql, { type Connection, type Pool, type PoolOptions } from 'mysql2/promise'

/** The MariaDB/MySQL the tests run against: MYSQL_* variables, defaulting to the local MariaDB. */
export const connectionOptions: PoolOptions = mysqlConfig

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
  await db.query(`DROP TABLE IF EXISTS \`${tableName}\`, \`${tableName}_floor\`, \`${tableName}_shared\``)
}

/** A local port nothing listens on: connecting to it is refused at once. */
export const closedPort = freePort
