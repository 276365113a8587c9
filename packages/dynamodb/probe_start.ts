import { startDynamoDBLocal } from '@verrou/test-utils/dynamodb-local'
const local = await startDynamoDBLocal()
console.log(local.endpoint)
process.on('SIGTERM', async () => { await local.stop(); process.exit(0) })
setInterval(() => {}, 1 << 30)
