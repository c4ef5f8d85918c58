import { Can } from '../../auth/permissions.js'
import { Priority } from '../../protocol/priority.js'
import type { SayOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

/** `msg:<text>`: the text goes to every room the connection joined. */
export const say: OpHandler<SayOp> = {
  run (op, session, { hub }) {
    if (session.rooms.size === 0) throw new OpError('not_member', 'join a room before msg:')
    const allowed = [...session.rooms].filter(room => ((session.capabilities.get(room) ?? 0) & Can.publish) !== 0)
    if (allowed.length === 0) throw new OpError('forbidden', 'no publish capability on any joined room')
    for (const room of allowed) void hub.publish(room, op.text, { priority: Priority.normal, from: session.id, user: session.user })
    return undefined
  }
}
