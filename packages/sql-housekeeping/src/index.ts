export { Housekeeping, type HousekeepingOptions } from './housekeeping.js'
