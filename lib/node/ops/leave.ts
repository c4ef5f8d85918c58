import type { LeaveOp } from '../../protocol/schemas.js'
import type { OpHandler } from './types.js'

/** Leaving a room the connection is not in is not an error. */
export const leave: OpHandler<LeaveOp> = {
  run (op, session, { hub }) {
    if (session.isIn(op.room)) {
      session.rooms.delete(op.room)
      session.forgetRoom(op.room)
      hub.leave(session, op.room)
    }
    return { fields: { room: op.room } }
  }
}
