import type { TestProject } from 'vitest/node'
import { startDynamoDBLocal } from './dynamodb_local.js'

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string
  }
}

/** Uses DYNAMODB_ENDPOINT when set, otherwise starts an in-memory DynamoDB Local for this run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.DYNAMODB_ENDPOINT
  if (configured) {
    project.provide('dynamodbEndpoint', configured)
    return async () => {}
  }
  const local = await startDynamoDBLocal()
  project.provide('dynamodbEndpoint', local.endpoint)
  return () => local.stop()
}
