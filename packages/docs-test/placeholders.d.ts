// The reader's own code, as README snippets call it: each name is declared with the type the snippet
// relies on, so a snippet that misuses Verrou still fails to compile. No Node types here: the edge
// configuration includes this file.
import type { Lock, LockFactory, StoreEntry, Verrou } from '@verrou/core'

declare global {
  /** Work a lock protects, given the fencing token to pass to the resource. */
  function buildReport(token: number | { signal: AbortSignal; fencingToken: number }): Promise<void>
  function issueInvoice(id: number, fencingToken: number): Promise<{ id: number }>
  function sendInvoice(id: number, context: { signal: AbortSignal; fencingToken: number }): Promise<{ id: number }>
  function sendNightlyReport(jobId?: string, fencingToken?: number): Promise<string>
  /** A lock created earlier in the README's prose. */
  const lock: Lock
  /** The `Verrou` (or factory) a README set up in its first example, on the store that README is about. */
  const verrou: Verrou<Record<string, StoreEntry>>
  const factory: LockFactory
  /** Work under a permit, a read lock or a write lock. */
  function exportOne(fencingToken?: number): Promise<void>
  function render(): Promise<void>
  function edit(): Promise<void>
  const job: { id: string }
  function callPartnerApi(job: { id: string }, fencingToken?: number): Promise<void>
  function readSettings(): Promise<unknown>
  function rewriteSettings(): Promise<void>
}
