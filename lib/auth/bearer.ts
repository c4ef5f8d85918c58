import { createHash, timingSafeEqual } from 'node:crypto'

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Returns a check of an Authorization header against `Bearer <apiKey>`. Both sides are hashed
 * first so that timingSafeEqual always compares equal lengths and the key's length does not leak.
 */
export function createBearerCheck (apiKey: string): (authorizationHeader: string | undefined) => boolean {
  if (typeof apiKey !== 'string' || apiKey === '') throw new TypeError('createBearerCheck: apiKey must be a non-empty string')
  const expected = digest(apiKey)
  return authorizationHeader => {
    if (authorizationHeader === undefined) return false
    // The scheme is case-insensitive (RFC 9110); the token is not.
    const match = /^bearer +(\S+) *$/i.exec(authorizationHeader)
    if (match === null) return false
    return timingSafeEqual(digest(match[1]!), expected)
  }
}

interface HeaderCarrier { headers: { authorization?: string | undefined } }
interface StatusReply { code (status: number): { send (body: unknown): unknown } }

/** An onRequest hook that answers 401 unless the request carries `Authorization: Bearer <apiKey>`. */
export function createBearerHook (apiKey: string): (request: HeaderCarrier, reply: StatusReply) => Promise<unknown> {
  const authorized = createBearerCheck(apiKey)
  return async (request, reply) => {
    if (!authorized(request.headers.authorization)) {
      return reply.code(401).send({ code: 'unauthorized', message: 'expected Authorization: Bearer <API_KEY>' })
    }
  }
}
