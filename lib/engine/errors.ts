/**
 * The engine's backing service (Redis, a broker) cannot take the operation now. Nothing was stored:
 * the caller answers `unavailable` (HTTP 503) instead of acknowledging a publish that would be lost.
 */
export class EngineUnavailableError extends Error {
  readonly code = 'unavailable'
  readonly statusCode = 503

  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'EngineUnavailableError'
  }
}
