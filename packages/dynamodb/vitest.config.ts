import { mergeConfig } from 'vitest/config'
import { sharedVitestConfig } from '../../vitest.shared.js'

export default mergeConfig(sharedVitestConfig, {
  test: {
    // One DynamoDB Local for the whole run (or DYNAMODB_ENDPOINT when set).
    globalSetup: ['./test/global_setup.ts'],
  },
})
