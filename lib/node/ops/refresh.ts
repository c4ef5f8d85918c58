import type { RefreshOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

/** A fresh token for the same `sub` moves the connection's expiry; anything else is refused. */
export const refresh: OpHandler<RefreshOp> = {
  async run (op, session, { tokens, policy }) {
    if (tokens === undefined) throw new OpError('bad_request', 'no JWT key is configured: there is nothing to refresh')
    let identity
    try {
      identity = await tokens.verify(op.token)
    } catch (error) {
      throw new OpError('unauthorized', (error as Error).message)
    }
    if (identity.user !== session.user) throw new OpError('forbidden', `the new token is for ${identity.user}, the connection is ${session.user ?? 'anonymous'}`)
    session.authenticate(identity)
    // New grants apply to the rooms already joined; taking grants away takes a new connection.
    for (const [room, bits] of session.rooms) session.rooms.set(room, bits | policy.decide(room, session))
    return { fields: identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt } }
  }
}
