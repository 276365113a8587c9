import { memoryStore } from '@verrou/core'
import { MemoryStore as V0MemoryStore } from 'verrou-v0/drivers/memory'
import { memoryFloorSubject } from '../subjects/floor_memory.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { verrouV0Subject } from '../subjects/verrou_v0.js'
import type { Backend } from './backend.js'

/**
 * In-process locks. Workers of one subject share one store (that is what an in-process store is for), so
 * "separate connections" means separate factories here.
 */
export const memoryBackend: Backend = {
  store: 'memory',
  label: 'Memory',
  async start() {
    const ours = memoryStore()
    const v0 = new V0MemoryStore()
    return {
      server: `in-process (Node.js ${process.versions.node})`,
      subjects: [
        ...verrouSubjects('memory', async () => ({ store: ours, close: async () => {} })),
        memoryFloorSubject(),
        verrouV0Subject('memory', async () => ({ store: v0, close: async () => {} })),
      ],
      async stop() {},
    }
  },
}
