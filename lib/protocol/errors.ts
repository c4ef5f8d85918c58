/**
 * Every error code the server answers with, over WebSocket (`{"op":"error","code",…}`) and HTTP (a
 * `{code, message}` body), with the HTTP status it carries. One catalogue, so both transports speak
 * the same vocabulary; docs/protocol.md lists it.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_member: 403,
  not_found: 404,
  unknown_task: 404,
  too_many_rooms: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  task_failed: 422,
  rate_limited: 429,
  overloaded: 429,
  connection_limit: 429,
  internal: 500,
  shutting_down: 503,
  server_full: 503,
  under_pressure: 503,
  unavailable: 503,
  timeout: 504
} as const satisfies Record<string, number>

export type ErrorCode = keyof typeof ERROR_STATUS

export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value)
}

/** The body of every HTTP error and the fields of every WebSocket error frame. */
export interface ErrorBody {
  code: ErrorCode
  message: string
}
