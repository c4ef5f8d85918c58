import { Can } from '../../auth/permissions.js'
import { isPromise } from '../../engine/composed.js'
import type { Awaitable } from '../../engine/types.js'
import type { JoinOp } from '../../protocol/schemas.js'
import type { JoinResult } from '../hub.js'
import { OpError, type Answer, type OpHandler, type OpSession, type SessionContext } from './types.js'

export const join: OpHandler<JoinOp> = {
  run (op, session, context) {
    const { hub, settings } = context
    const { room, since } = op
    const membership = hub.membership(session, room)
    if (membership === 'pending') throw new OpError('bad_request', `a join of ${room} is still being served`)
    // A member's outbox may still hold messages after `since`: a replay would send them twice.
    if (membership === 'live' && since !== undefined) throw new OpError('bad_request', `already a member of ${room}: fill gaps with the history op`)
    if (membership === undefined && session.rooms.size >= settings.maxRoomsPerConnection) {
      throw new OpError('too_many_rooms', `a connection may join at most ${settings.maxRoomsPerConnection} rooms`)
    }
    if (op.info !== undefined && Buffer.byteLength(JSON.stringify(op.info)) > settings.presenceInfoMaxBytes) {
      throw new OpError('bad_request', `join: info is over PRESENCE_INFO_MAX_BYTES (${settings.presenceInfoMaxBytes} bytes of JSON)`)
    }
    if (op.token === undefined) return enter(op, session, context, 0)
    if (context.tokens === undefined) throw new OpError('bad_request', 'no JWT key is configured: a room token cannot be checked')
    return context.tokens.verifyRoomToken(op.token, room, session.user).then(
      grant => enter(op, session, context, grant.bits),
      (error: unknown) => { throw new OpError('forbidden', (error as Error).message) }
    )
  }
}

/** Joins once the capabilities are known: the namespace's and the token's, plus a room token's `extra`. */
function enter (op: JoinOp, session: OpSession, context: SessionContext, extra: number): Awaitable<Answer> {
  const { hub, policy } = context
  const { room, since } = op
  const capabilities = policy.decide(room, session) | extra
  if ((capabilities & Can.join) === 0) throw new OpError('forbidden', `no join capability on ${room}`)
  // A replay is a history read, and presence events are presence.
  if (since !== undefined && (capabilities & Can.history) === 0) throw new OpError('forbidden', `no history capability on ${room}: a join without since`)
  const namespace = policy.namespaceOf(room)
  if (namespace?.maxMembers !== undefined && hub.membership(session, room) === undefined && hub.localMembers(room) >= namespace.maxMembers) {
    throw new OpError('forbidden', `${room} is full (${namespace.maxMembers} members)`)
  }
  // A re-join keeps what a room token granted before.
  session.rooms.set(room, (session.rooms.get(room) ?? 0) | capabilities)
  const watch = op.presence === true && namespace?.presenceEvents !== false && (capabilities & Can.presence) !== 0
  const joined = hub.join(session, room, { since, watch, user: session.user, info: session.userInfo ?? op.info })
  if (!isPromise(joined)) return answerOf(session, context, room, joined)
  return joined.then(result => answerOf(session, context, room, result), (error: unknown) => {
    // An engine that failed mid-join must not leave the connection half in the room.
    session.rooms.delete(room)
    hub.leave(session, room)
    throw error
  })
}

function answerOf (session: OpSession, { hub }: SessionContext, room: string, result: JoinResult): Answer {
  const { position, recovery } = result
  const fields: Record<string, unknown> = { room, seq: position.seq, epoch: position.epoch }
  if (recovery !== undefined) {
    fields.recovered = recovery.recovered
    if (!recovery.recovered) fields.reason = recovery.reason
  }
  return { fields, after: () => { hub.finishJoin(session, room, result) } }
}
