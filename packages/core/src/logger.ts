/** The subset of pino's interface Verrou logs through. pino, and most structured loggers, fit as they are. */
export interface Logger {
  trace(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

function ignore(): void {}

/** The default: Verrou says nothing unless given a logger. */
export const silentLogger: Logger = { trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore }
