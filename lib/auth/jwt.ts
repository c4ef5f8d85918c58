import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { ConfigError } from '../config.js'
import { CAPABILITIES, grantsOf, roomGrant, type Capability, type Grant } from './permissions.js'

export interface JwtSettings {
  jwtSecret: string
  jwtPublicKey: string
  jwksUrl: string
  jwtIssuer: string
  jwtAudience: string
  jwtClockToleranceS: number
}

/** Who a connection is, from its token. */
export interface Identity {
  /** The token's `sub`. */
  readonly user: string
  /** The token's `info` claim, shown in presence. */
  readonly info?: unknown
  /** ms since the epoch; absent for a token without `exp`. */
  readonly expiresAt?: number
  /** The `rooms` claim: capabilities on room patterns. */
  readonly grants: readonly Grant[]
}

/** What a per-room token (a join's `token`) grants when it names no `capabilities`. */
const ROOM_TOKEN_DEFAULT: readonly Capability[] = ['join', 'history', 'presence']

export class AuthError extends Error {
  override name = 'AuthError'
  readonly code = 'unauthorized'
}

const HMAC = ['HS256', 'HS384', 'HS512']
const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_BY_CURVE: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }
const ASYMMETRIC = [...RSA, 'ES256', 'ES384', 'ES512', 'EdDSA']

/** The algorithms a public key may verify: never an HMAC one, so an HS token "signed" with the public key is refused. */
function algorithmsFor (key: KeyObject): string[] {
  const type = key.asymmetricKeyType
  if (type === 'rsa' || type === 'rsa-pss') return RSA
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    const alg = curve === undefined ? undefined : EC_BY_CURVE[curve]
    if (alg !== undefined) return [alg]
  }
  if (type === 'ed25519' || type === 'ed448') return ['EdDSA']
  throw new ConfigError(`JWT_PUBLIC_KEY: unsupported key type ${String(type)}`)
}

/**
 * Verifies connection tokens with jose against the one key source configured: a shared secret, a
 * public key file or a JWKS URL (fetched with a timeout, cached, refetched for an unknown `kid`).
 * `alg: none` never verifies; each source accepts only its own family of algorithms.
 */
export class TokenVerifier {
  private constructor (
    private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey,
    private readonly algorithms: string[],
    private readonly settings: JwtSettings
  ) {}

  /** Undefined when no key is configured: every connection is then anonymous. */
  static fromSettings (settings: JwtSettings): TokenVerifier | undefined {
    const sources = [settings.jwtSecret !== '' && 'JWT_SECRET', settings.jwtPublicKey !== '' && 'JWT_PUBLIC_KEY', settings.jwksUrl !== '' && 'JWKS_URL'].filter(Boolean)
    if (sources.length > 1) throw new ConfigError(`set one of JWT_SECRET, JWT_PUBLIC_KEY and JWKS_URL, not ${sources.join(' and ')}`)
    if (settings.jwtSecret !== '') return new TokenVerifier(new TextEncoder().encode(settings.jwtSecret), HMAC, settings)
    if (settings.jwtPublicKey !== '') {
      let key: KeyObject
      try {
        key = createPublicKey(readFileSync(settings.jwtPublicKey, 'utf8'))
      } catch (error) {
        throw new ConfigError(`JWT_PUBLIC_KEY must be the path of a PEM public key (${(error as Error).message})`)
      }
      return new TokenVerifier(key, algorithmsFor(key), settings)
    }
    if (settings.jwksUrl !== '') {
      let url: URL
      try {
        url = new URL(settings.jwksUrl)
      } catch {
        throw new ConfigError(`JWKS_URL must be a URL (got ${JSON.stringify(settings.jwksUrl)})`)
      }
      // A JWKS endpoint that is down fails verifications after the timeout; it never stops the server.
      // An unknown kid refetches at most once a second, so forged kids cannot hammer the endpoint.
      const jwks = createRemoteJWKSet(url, { timeoutDuration: 3000, cooldownDuration: 1000, cacheMaxAge: 600_000 })
      return new TokenVerifier(jwks, ASYMMETRIC, settings)
    }
    return undefined
  }

  async verify (token: string): Promise<Identity> {
    const payload = await this.payloadOf(token)
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('invalid token: no sub claim')
    // A room token names one room: one that leaked must not open a connection for its user.
    if (payload.room !== undefined) throw new AuthError('invalid token: a room token cannot open a connection')
    const grants = payload.rooms === undefined ? [] : grantsOf(payload.rooms)
    if (grants === undefined) throw new AuthError(`invalid token: the rooms claim must map room patterns to lists of ${CAPABILITIES.join(', ')}`)
    const identity: { user: string, info?: unknown, expiresAt?: number, grants: readonly Grant[] } = { user: payload.sub, grants }
    if (payload.info !== undefined) identity.info = payload.info
    if (typeof payload.exp === 'number') identity.expiresAt = payload.exp * 1000
    return identity
  }

  /**
   * A per-room token: its `room` must be the room joined and its `sub` the connection's; it grants
   * its `capabilities` (join, history and presence when it names none) on that room alone.
   */
  async verifyRoomToken (token: string, room: string, user: string | undefined): Promise<Grant> {
    const payload = await this.payloadOf(token)
    if (payload.room !== room) throw new AuthError(`the room token is for ${JSON.stringify(payload.room)}, not ${room}`)
    if (user === undefined || payload.sub !== user) throw new AuthError('the room token is for another user than this connection')
    const capabilities = payload.capabilities ?? ROOM_TOKEN_DEFAULT
    if (!Array.isArray(capabilities) || !capabilities.every(c => CAPABILITIES.includes(c as Capability))) {
      throw new AuthError(`the room token's capabilities must be a list of ${CAPABILITIES.join(', ')}`)
    }
    return roomGrant(room, capabilities as Capability[])
  }

  private async payloadOf (token: string): Promise<Record<string, unknown> & { sub?: string, exp?: number }> {
    let payload
    try {
      const options = {
        algorithms: this.algorithms,
        // A token without exp would never end; every token must say when it does.
        requiredClaims: ['exp'],
        clockTolerance: this.settings.jwtClockToleranceS,
        ...(this.settings.jwtIssuer === '' ? {} : { issuer: this.settings.jwtIssuer }),
        ...(this.settings.jwtAudience === '' ? {} : { audience: this.settings.jwtAudience })
      }
      const key = this.key
      // jose types a key and a key-resolving function (JWKS) as separate overloads.
      payload = typeof key === 'function'
        ? (await jwtVerify(token, key, options)).payload
        : (await jwtVerify(token, key, options)).payload
    } catch (error) {
      throw new AuthError(`invalid token: ${(error as Error).message}`)
    }
    return payload
  }
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/**
 * The token of an upgrade request: `?token=`, a `Sec-WebSocket-Protocol` value shaped like a JWT
 * (browsers cannot set headers; offer `switchboard` first so that is the protocol echoed), or
 * `Authorization: Bearer`.
 */
export function tokenOf (query: unknown, headers: Record<string, string | string[] | undefined>): string | undefined {
  const fromQuery = (query as { token?: unknown } | undefined)?.token
  if (typeof fromQuery === 'string' && fromQuery !== '') return fromQuery
  const protocols = headers['sec-websocket-protocol']
  if (typeof protocols === 'string') {
    const token = protocols.split(',').map(p => p.trim()).find(p => JWT_SHAPE.test(p))
    if (token !== undefined) return token
  }
  const authorization = headers.authorization
  if (typeof authorization === 'string') {
    const match = /^bearer +(\S+) *$/i.exec(authorization)
    if (match !== null) return match[1]
  }
  return undefined
}
