import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ERROR_STATUS, isErrorCode, type ErrorBody, type ErrorCode } from '../lib/protocol/errors.js'

/** Fastify's own errors that a client caused, in the catalogue's words. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request'
}

/** Other plugins' client errors by their status, so a 401 or 429 from elsewhere keeps its meaning. */
const STATUS_CODES: Record<number, ErrorCode> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'shutting_down'
}

/** Answers an unknown route of the app with the same `{code, message}` body as every other error. */
export function replyNotFound (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ code: 'not_found', message: `no route ${request.method} ${request.url}` } satisfies ErrorBody)
}

/**
 * Validates with TypeBox. Bodies are checked as sent: `{"name":5}` is not a task name. Path and
 * query parameters arrive as strings, so they are converted to the schema's types first.
 */
function compileValidator ({ schema, httpPart }: { schema: TSchema, httpPart?: string }) {
  const check = TypeCompiler.Compile(schema)
  const convert = httpPart !== 'body'
  return (data: unknown): { value: unknown } | { error: Error } => {
    const value = convert ? Value.Convert(schema, data) : data
    if (check.Check(value)) return { value }
    const first = check.Errors(value).First()
    const field = first === undefined || first.path === '' ? httpPart ?? 'request' : first.path.slice(1).replaceAll('/', '.')
    return { error: new Error(`${field}: ${first?.message.toLowerCase() ?? 'invalid'}`) }
  }
}

/**
 * The HTTP side of the one error vocabulary (lib/protocol/errors.ts): every error of the app's routes
 * leaves as `{code, message}` with the catalogue's status, whether a route threw it, validation
 * rejected the request or Fastify refused the body. Applies to the app's own routes only.
 */
export default fp(async function httpErrors (fastify) {
  fastify.setValidatorCompiler(compileValidator)
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    let code: ErrorCode
    let message = error.message
    const status = error.statusCode ?? 500
    if (error.validation !== undefined || error.validationContext !== undefined) {
      code = 'bad_request'
    } else if (isErrorCode(error.code)) {
      code = error.code
    } else if (Object.hasOwn(FASTIFY_CODES, error.code)) {
      code = FASTIFY_CODES[error.code] as ErrorCode
    } else if (status < 500 || Object.hasOwn(STATUS_CODES, status)) {
      // A client error the catalogue has no word for (405, 409 …) keeps its status as a bad_request.
      code = STATUS_CODES[status] ?? 'bad_request'
      return reply.code(status).send({ code, message } satisfies ErrorBody)
    } else {
      request.log.error({ err: error }, 'request failed')
      code = 'internal'
      message = 'internal error'
    }
    return reply.code(ERROR_STATUS[code]).send({ code, message } satisfies ErrorBody)
  })
  // The not-found handler belongs to a path prefix; without one, the root (and its 404s) is the host's.
  if (fastify.prefix !== '') fastify.setNotFoundHandler(replyNotFound)
}, { name: 'http-errors', fastify: '5.x' })
