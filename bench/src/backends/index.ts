import type { StoreId } from '../subject.js'
import type { Backend } from './backend.js'
import { dynamodbBackend } from './dynamodb.js'
import { memoryBackend } from './memory.js'
import { mysqlBackend } from './mysql.js'
import { postgresBackend } from './postgres.js'
import { redisBackend } from './redis.js'
import { upstashBackend } from './upstash.js'

export const BACKENDS: Record<StoreId, Backend> = {
  memory: memoryBackend,
  redis: redisBackend,
  upstash: upstashBackend,
  postgres: postgresBackend,
  mysql: mysqlBackend,
  dynamodb: dynamodbBackend,
}
