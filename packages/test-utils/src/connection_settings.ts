/**
 * Where the tests, benchmarks and torture suite find the shared servers, from the environment with the
 * defaults of the development machine. Plain objects, so this package needs none of the clients: each
 * shape is what `pg`, `mysql2` and `@aws-sdk/client-dynamodb` accept.
 */

/** REDIS_URL, default redis://127.0.0.1:6379. */
export const redisUrl: string = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export type PostgresSettings =
  | { connectionString: string }
  | { host: string; port: number; user: string; password: string | undefined; database: string }

/** POSTGRES_URL if set, else the standard PG* variables, defaulting to 127.0.0.1:5432, user postgres, database test. */
export function postgresConfig(): PostgresSettings {
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

export interface MysqlSettings {
  host: string
  port: number
  user: string
  password: string
  database: string
}

/** MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DATABASE; default root@127.0.0.1:3306, database test. */
export const mysqlConfig: MysqlSettings = {
  host: process.env.MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? 'root',
  password: process.env.MYSQL_PASSWORD ?? '',
  database: process.env.MYSQL_DATABASE ?? 'test',
}

export interface DynamoDBSettings {
  /** DYNAMODB_ENDPOINT: an engine that is already running; unset means the tests start DynamoDB Local. */
  endpoint: string | undefined
  region: string
  credentials: { accessKeyId: string; secretAccessKey: string }
}

/** DYNAMODB_ENDPOINT, DYNAMODB_REGION (us-east-1), DYNAMODB_ACCESS_KEY_ID and _SECRET_ACCESS_KEY (DynamoDB Local takes any). */
export function dynamodbConfig(): DynamoDBSettings {
  return {
    endpoint: process.env.DYNAMODB_ENDPOINT || undefined,
    region: process.env.DYNAMODB_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: process.env.DYNAMODB_ACCESS_KEY_ID ?? 'verrou',
      secretAccessKey: process.env.DYNAMODB_SECRET_ACCESS_KEY ?? 'verrou',
    },
  }
}

/** A name no other run uses: parallel and repeated runs never share a table, prefix or key. */
export function uniqueName(label: string): string {
  return `${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}
