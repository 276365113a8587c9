import { contend, createVerrou, overlaps } from './contention.js'

const verrou = createVerrou()
console.log('Four workers contend for the lock "invoice:42" on the in-memory store.\n')
const intervals = await contend(verrou.use('memory'), { workers: 4, rounds: 3, log: (line) => console.log(line) })
const bad = overlaps(intervals)
console.log(`\n${intervals.length} critical sections, ${bad.length} overlapping.`)
console.log(bad.length === 0 ? 'The lock held: one worker at a time, in fencing-token order.' : 'The lock FAILED.')
process.exitCode = bad.length === 0 ? 0 : 1
