import { then } from '../../engine/composed.js'
import { PRESENCE_LIMIT_DEFAULT, type PresenceOp } from '../../protocol/schemas.js'
import { requireCapability, requireMember, type OpHandler } from './types.js'

export const presence: OpHandler<PresenceOp> = {
  run (op, session, { hub }) {
    requireMember(session, op.room, 'reading its presence')
    requireCapability(session, op.room, 'presence')
    return then(hub.presence(op.room, op.limit ?? PRESENCE_LIMIT_DEFAULT, op.cursor), page => ({ fields: { room: op.room, ...page } }))
  }
}
