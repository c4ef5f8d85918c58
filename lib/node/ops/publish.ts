import { isPromise } from '../../engine/composed.js'
import type { PublishResult } from '../hub.js'
import { priorityOf } from '../../protocol/codec.js'
import type { PublishOp } from '../../protocol/schemas.js'
import { requireCapability, requireMember, type Answer, type OpHandler } from './types.js'

export const publish: OpHandler<PublishOp> = {
  run (op, session, { hub }) {
    requireMember(session, op.room, 'publishing to it')
    requireCapability(session, op.room, 'publish')
    const outcome = hub.publish(op.room, op.data, { priority: priorityOf(op.priority), ttlMs: op.ttlMs, key: op.key, from: session.id, user: session.user, id: op.id })
    return isPromise(outcome) ? outcome.then(answerOf) : answerOf(outcome)
  }
}

function answerOf ({ seq, duplicate }: PublishResult): Answer {
  return { fields: duplicate ? { seq, duplicate } : { seq } }
}
