// Compiled with moduleResolution "node" (node10), which ignores package.json "exports".
import { memoryStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { redisStore } from '@verrou/redis'

export const pieces = [memoryStore, runLockStoreConformance, redisStore]
