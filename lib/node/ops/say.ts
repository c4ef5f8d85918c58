import { Can } from '../../auth/permissions.js'
import { isPromise } from '../../engine/composed.js'
import { Priority } from '../../protocol/priority.js'
import type { SayOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

/** `msg:<text>`: the text goes to every room the connection joined. */
export const say: OpHandler<SayOp> = {
  run (op, session, context) {
    const { hub } = context
    if (session.rooms.size === 0) throw new OpError('not_member', 'join a room before msg:')
    const allowed = [...session.rooms].filter(([, bits]) => (bits & Can.publish) !== 0).map(([room]) => room)
    if (allowed.length === 0) throw new OpError('forbidden', 'no publish capability on any joined room')
    for (const room of allowed) {
      const published = hub.publish(room, op.text, { priority: Priority.normal, from: session.id, user: session.user })
      // msg: has no reply: an engine that fails is logged, never an unhandled rejection.
      if (isPromise(published)) published.catch((error: unknown) => { context.events.warn('publish_failed', { client: session.id, room, err: error }, 'msg: could not be published') })
    }
    return undefined
  }
}
