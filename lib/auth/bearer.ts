import { createHash, timingSafeEqual } from 'node:crypto'
import { ConfigError } from '../config.js'

export const API_SCOPES = ['publish', 'broadcast', 'tasks', 'read'] as const
export type ApiScope = (typeof API_SCOPES)[number]

export interface ApiKey {
  readonly key: string
  readonly scopes: ReadonlySet<ApiScope>
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * The HTTP API's keys: API_KEY with every scope, and API_KEYS, a comma-separated list of `key` (every
 * scope) or `key:scope+scope` (publish, broadcast, tasks, read). Throws a ConfigError naming the
 * variable for a bad entry.
 */
export function parseApiKeys (apiKey: string, apiKeys: string): ApiKey[] {
  const keys: ApiKey[] = apiKey === '' ? [] : [{ key: apiKey, scopes: new Set(API_SCOPES) }]
  for (const entry of apiKeys.split(',').map(e => e.trim()).filter(e => e !== '')) {
    const colon = entry.lastIndexOf(':')
    const key = colon === -1 ? entry : entry.slice(0, colon)
    const scopes = colon === -1 ? [...API_SCOPES] : entry.slice(colon + 1).split('+')
    const unknown = scopes.filter(scope => !API_SCOPES.includes(scope as ApiScope))
    if (key === '' || unknown.length > 0 || scopes.length === 0) {
      throw new ConfigError(`API_KEYS entries must be key or key:scope+scope with scopes ${API_SCOPES.join(', ')} (got ${unknown.length > 0 ? `scope ${unknown.join(', ')}` : 'an empty key'})`)
    }
    keys.push({ key, scopes: new Set(scopes as ApiScope[]) })
  }
  return keys
}

/**
 * Returns the scopes of the key an Authorization header carries as `Bearer <key>`, or undefined.
 * Both sides are hashed first, so timingSafeEqual compares equal lengths and no key's length leaks;
 * every key is compared, so the time does not say which one matched.
 */
export function createBearerCheck (keys: readonly ApiKey[]): (authorizationHeader: string | undefined) => ReadonlySet<ApiScope> | undefined {
  if (keys.length === 0) throw new TypeError('createBearerCheck: at least one API key is needed')
  const expected = keys.map(({ key, scopes }) => ({ hash: digest(key), scopes }))
  return authorizationHeader => {
    if (authorizationHeader === undefined) return undefined
    // The scheme is case-insensitive (RFC 9110); the token is not.
    const match = /^bearer +(\S+) *$/i.exec(authorizationHeader)
    if (match === null) return undefined
    const presented = digest(match[1]!)
    let found: ReadonlySet<ApiScope> | undefined
    for (const { hash, scopes } of expected) if (timingSafeEqual(presented, hash)) found = scopes
    return found
  }
}

interface ScopedRequest {
  headers: { authorization?: string | undefined }
  routeOptions: { config: unknown }
}
interface StatusReply { code (status: number): { send (body: unknown): unknown } }

/**
 * An onRequest hook: 401 unless the request carries one of the keys, 403 when that key lacks the
 * scope the route names in its `config.scope`.
 */
export function createBearerHook (keys: readonly ApiKey[]): (request: ScopedRequest, reply: StatusReply) => Promise<unknown> {
  const scopesOf = createBearerCheck(keys)
  return async (request, reply) => {
    const scopes = scopesOf(request.headers.authorization)
    if (scopes === undefined) {
      return reply.code(401).send({ code: 'unauthorized', message: 'expected Authorization: Bearer <API key>' })
    }
    const needed = (request.routeOptions.config as { scope?: ApiScope } | undefined)?.scope
    if (needed !== undefined && !scopes.has(needed)) {
      return reply.code(403).send({ code: 'forbidden', message: `this API key has no ${needed} scope` })
    }
  }
}
