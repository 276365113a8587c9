/**
 * Records every unhandled rejection and uncaught exception while installed: a fault must surface as a
 * rejected call, never as a stray rejection or a crash.
 */
export function installCrashGuard(): { seen: unknown[]; dispose(): void } {
  const seen: unknown[] = []
  const record = (reason: unknown) => {
    seen.push(reason)
  }
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  return {
    seen,
    dispose: () => {
      process.off('unhandledRejection', record)
      process.off('uncaughtException', record)
    },
  }
}
