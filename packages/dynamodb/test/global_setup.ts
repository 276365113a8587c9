import { dynamodbConfig } from '@verrou/test-utils/connection-settings'
import { startDynamoDBLocal } from '@verrou/test-utils/dynamodb-local'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string
  }
}

/** Uses DYNAMODB_ENDPOINT when set, otherwise starts an in-memory DynamoDB Local for this run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = dynamodbConfig().endpoint
  if (configured) {
    project.provide('dynamodbEndpoint', configured)
    return async () => {}
  }
  const local = await startDynamoDBLocal()
  project.provide('dynamodbEndpoint', local.endpoint)
  return () => local.stop()
}
