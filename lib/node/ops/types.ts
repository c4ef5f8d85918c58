import type { Identity, TokenVerifier } from '../../auth/jwt.js'
import { Can, type Capability, type Grant, type RoomPolicy } from '../../auth/permissions.js'
import type { OutboxRegistry } from '../../delivery/outbox.js'
import type { Awaitable } from '../../engine/types.js'
import type { ErrorCode } from '../../protocol/errors.js'
import type { ClientOp } from '../../protocol/schemas.js'
import type { WorkerPool } from '../../tasks/types.js'
import type { ConnectionEvents } from '../connection-events.js'
import type { ConnectionLimits } from '../connection-limits.js'
import type { Connection, Hub } from '../hub.js'

export interface SessionSettings {
  maxPayload: number
  maxRoomsPerConnection: number
  rateLimitPerSec: number
  rateLimitBurst: number
  heartbeatMs: number
  allowClientBroadcast: boolean
  defaultTask: string
  perMessageDeflate: boolean
  perMessageDeflateThreshold: number
  presenceInfoMaxBytes: number
}

/** What every session of one app shares. */
export interface SessionContext {
  readonly hub: Hub
  readonly outboxes: OutboxRegistry
  readonly workerPool: WorkerPool
  readonly settings: SessionSettings
  readonly events: ConnectionEvents
  /** Verifies connection tokens; undefined when no JWT key is configured (everyone is anonymous). */
  readonly tokens: TokenVerifier | undefined
  /** Who may do what in which room (ROOMS_CONFIG and the tokens' grants). */
  readonly policy: RoomPolicy
  readonly limits: ConnectionLimits
  isDraining (): boolean
}

/** The session as an op handler sees it: a connection and the rooms it joined. */
export interface OpSession extends Connection {
  /**
   * The rooms joined, each with its capabilities (Can bits) decided at the join and kept until it is
   * left. Created on first use, so an idle connection has none.
   */
  readonly rooms: Map<string, number>
  isIn (room: string): boolean
  /** Drops what the session keeps about a room it left (its last gap reports). */
  forgetRoom (room: string): void
  /** The token's `sub`; undefined for an anonymous connection. */
  readonly user: string | undefined
  /** The token's `info` claim, shown in presence. */
  readonly userInfo: unknown
  /** The grants of the connection's token. */
  readonly grants: readonly Grant[]
  /** A verified token for this connection: its expiry moves to the token's `exp`, its grants apply. */
  authenticate (identity: Identity): void
}

/**
 * What an op produced: reply fields (the session adds op, ref and ok), or a whole encoded frame, and
 * what to do once the answer is queued (a join's replay must follow its reply).
 */
export interface Answer {
  readonly fields?: Record<string, unknown>
  /** Fields that are already JSON text, such as a list of stored messages. */
  readonly json?: Record<string, string>
  readonly payload?: string
  readonly after?: () => void
}

/** An op refused with a catalogue code; the session sends it as an error frame with the op's ref. */
export class OpError extends Error {
  override name = 'OpError'
  constructor (readonly code: ErrorCode, message: string) {
    super(message)
  }
}

export interface OpHandler<O extends ClientOp> {
  /** Answered even without a ref: the client asked for a result (task) or a pong (ping). */
  readonly alwaysAnswered?: boolean
  /** Undefined: nothing to answer. */
  run (op: O, session: OpSession, context: SessionContext): Awaitable<Answer | undefined>
}

export function requireMember (session: OpSession, room: string, action: string): void {
  if (!session.isIn(room)) throw new OpError('not_member', `join ${room} before ${action}`)
}

/** A member's capability on a room, from the decision cached at its join: no pattern is matched here. */
export function requireCapability (session: OpSession, room: string, capability: Exclude<Capability, 'join'>): void {
  if (((session.rooms.get(room) ?? 0) & Can[capability]) === 0) throw new OpError('forbidden', `no ${capability} capability on ${room}`)
}
