import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ConfigError } from '../config.js'
import { compileRoomPattern, type RoomMatcher } from './room-pattern.js'

export const CAPABILITIES = ['join', 'publish', 'history', 'presence'] as const
export type Capability = (typeof CAPABILITIES)[number]
/** Capabilities as bits, so a publish checks one cached number instead of scanning patterns. */
export const Can = { join: 1, publish: 2, history: 4, presence: 8 } as const satisfies Record<Capability, number>
const ALL = Can.join | Can.publish | Can.history | Can.presence

/** Who a namespace lets do something: every connection, those with a token, those whose token grants it, or no client (the HTTP API only). */
export const RULES = ['anyone', 'authenticated', 'granted', 'server'] as const
export type Rule = (typeof RULES)[number]

/** A token's grant: capabilities on the rooms a pattern matches. */
export interface Grant {
  readonly matches: RoomMatcher
  readonly bits: number
}

function bitsOf (capabilities: readonly string[]): number {
  let bits = 0
  for (const capability of capabilities) bits |= Can[capability as Capability] ?? 0
  return bits
}

/** The `rooms` claim, `{"chat:*": ["join","publish"], …}`; undefined when it is not of that shape. */
export function grantsOf (claim: unknown): Grant[] | undefined {
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) return undefined
  const grants: Grant[] = []
  for (const [pattern, capabilities] of Object.entries(claim)) {
    if (!Array.isArray(capabilities) || !capabilities.every(c => CAPABILITIES.includes(c as Capability))) return undefined
    let matches: RoomMatcher
    try {
      matches = compileRoomPattern(pattern)
    } catch {
      return undefined
    }
    grants.push({ matches, bits: bitsOf(capabilities as string[]) })
  }
  return grants
}

/** A grant for one room, from a per-room token. */
export function roomGrant (room: string, capabilities: readonly Capability[]): Grant {
  return { matches: candidate => candidate === room, bits: bitsOf(capabilities) }
}

const RuleSchema = Type.Union(RULES.map(rule => Type.Literal(rule)))
const NamespaceSchema = Type.Object({
  rooms: Type.String({ minLength: 1, maxLength: 256 }),
  join: Type.Optional(RuleSchema),
  publish: Type.Optional(RuleSchema),
  history: Type.Optional(RuleSchema),
  presence: Type.Optional(RuleSchema),
  maxMembers: Type.Optional(Type.Integer({ minimum: 1 })),
  presenceEvents: Type.Optional(Type.Boolean()),
  historySize: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  historyTtlMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 30 * 86_400_000 }))
}, { additionalProperties: false })
const RoomsConfigSchema = Type.Object({ namespaces: Type.Array(NamespaceSchema) }, { additionalProperties: false })
const checkRoomsConfig = TypeCompiler.Compile(RoomsConfigSchema)
export type RoomsConfig = Static<typeof RoomsConfigSchema>

export interface Namespace {
  readonly matches: RoomMatcher
  readonly rules: Record<Capability, Rule>
  readonly maxMembers: number | undefined
  readonly presenceEvents: boolean
  /** Overrides of HISTORY_SIZE and HISTORY_TTL_MS for the namespace's rooms. */
  readonly history: { size?: number | undefined, ttlMs?: number | undefined }
}

/** What the policy needs to know of a connection. */
export interface Principal {
  readonly user: string | undefined
  readonly grants: readonly Grant[]
}

/**
 * Who may do what in which room: the first namespace whose pattern matches a room sets its rules (an
 * omitted capability is `authenticated`); a token's grants add to them. Without ROOMS_CONFIG every
 * room is open to every connection; with it, a room that no namespace matches is closed to clients.
 */
export class RoomPolicy {
  private constructor (private readonly namespaces: readonly Namespace[] | undefined) {}

  static open (): RoomPolicy {
    return new RoomPolicy(undefined)
  }

  static fromConfig (config: RoomsConfig): RoomPolicy {
    return new RoomPolicy(config.namespaces.map(namespace => ({
      matches: compileRoomPattern(namespace.rooms),
      rules: {
        join: namespace.join ?? 'authenticated',
        publish: namespace.publish ?? 'authenticated',
        history: namespace.history ?? 'authenticated',
        presence: namespace.presence ?? 'authenticated'
      },
      maxMembers: namespace.maxMembers,
      presenceEvents: namespace.presenceEvents ?? true,
      history: { size: namespace.historySize, ttlMs: namespace.historyTtlMs }
    })))
  }

  /** Reads and validates ROOMS_CONFIG; errors name the file, the path in it and what was expected. */
  static fromFile (path: string): RoomPolicy {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'))
    } catch (error) {
      throw new ConfigError(`ROOMS_CONFIG ${path}: ${(error as Error).message}`)
    }
    const error = checkRoomsConfig.Errors(parsed).First()
    if (error !== undefined) throw new ConfigError(`ROOMS_CONFIG ${path}: ${error.path === '' ? '(root)' : error.path} ${error.message.toLowerCase()}`)
    try {
      return RoomPolicy.fromConfig(parsed as RoomsConfig)
    } catch (cause) {
      throw new ConfigError(`ROOMS_CONFIG ${path}: ${(cause as Error).message}`)
    }
  }

  get isOpen (): boolean {
    return this.namespaces === undefined
  }

  namespaceOf (room: string): Namespace | undefined {
    return this.namespaces?.find(namespace => namespace.matches(room))
  }

  /** The capabilities (Can bits) the principal has on the room. */
  decide (room: string, principal: Principal): number {
    let bits = 0
    for (const grant of principal.grants) if (grant.matches(room)) bits |= grant.bits
    if (this.namespaces === undefined) return ALL
    const namespace = this.namespaceOf(room)
    if (namespace === undefined) return bits
    for (const capability of CAPABILITIES) {
      const rule = namespace.rules[capability]
      if (rule === 'anyone' || (rule === 'authenticated' && principal.user !== undefined)) bits |= Can[capability]
    }
    return bits
  }
}
