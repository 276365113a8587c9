// The reader's own code, as README snippets call it: each name is declared with the type the snippet
// relies on, so a snippet that misuses Verrou still fails to compile. No Node types here: the edge
// configuration includes this file.
import type { Lock } from '@verrou/core'

declare global {
  /** Work a lock protects, given the fencing token to pass to the resource. */
  function buildReport(token: number | { signal: AbortSignal; fencingToken: number }): Promise<void>
  function issueInvoice(id: number, fencingToken: number): Promise<{ id: number }>
  function sendInvoice(id: number, context: { signal: AbortSignal; fencingToken: number }): Promise<{ id: number }>
  function sendNightlyReport(jobId?: string, fencingToken?: number): Promise<string>
  /** A lock created earlier in the README's prose. */
  const lock: Lock
}
