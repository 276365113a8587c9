export { DynamoDBStore, type DynamoDBStoreOptions, dynamodbStore } from './store.js'
