import { then } from '../../engine/composed.js'
import { priorityOf } from '../../protocol/codec.js'
import type { BroadcastOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

export const broadcast: OpHandler<BroadcastOp> = {
  run (op, session, { hub, settings, tokens }) {
    if (!settings.allowClientBroadcast) throw new OpError('forbidden', 'client broadcast is disabled (ALLOW_CLIENT_BROADCAST=false)')
    // A broadcast reaches every room, whatever its namespace: with tokens in use, only a user may send one.
    if (tokens !== undefined && session.user === undefined) throw new OpError('forbidden', 'an anonymous connection cannot broadcast')
    return then(hub.broadcast(op.data, priorityOf(op.priority)), recipients => ({ fields: { recipients } }))
  }
}
