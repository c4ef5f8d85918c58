import type { ErrorCode } from '../protocol/errors.js'

/** What a request can fail with: the server's catalogue, plus the two a client finds out by itself. */
export type ClientErrorCode = ErrorCode | 'timeout' | 'disconnected'

export class SwitchboardError extends Error {
  override name = 'SwitchboardError'
  constructor (readonly code: ClientErrorCode, message: string) {
    super(message)
  }
}
