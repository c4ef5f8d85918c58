import { then } from '../../engine/composed.js'
import { priorityOf } from '../../protocol/codec.js'
import type { BroadcastOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

export const broadcast: OpHandler<BroadcastOp> = {
  run (op, _session, { hub, settings }) {
    if (!settings.allowClientBroadcast) throw new OpError('forbidden', 'client broadcast is disabled (ALLOW_CLIENT_BROADCAST=false)')
    return then(hub.broadcast(op.data, priorityOf(op.priority)), recipients => ({ fields: { recipients } }))
  }
}
