import { then } from '../../engine/composed.js'
import { encodeMessageList } from '../../protocol/codec.js'
import { HISTORY_LIMIT_DEFAULT, type HistoryOp } from '../../protocol/schemas.js'
import { requireCapability, requireMember, type OpHandler } from './types.js'

export const history: OpHandler<HistoryOp> = {
  run (op, session, { hub }) {
    requireMember(session, op.room, 'reading its history')
    requireCapability(session, op.room, 'history')
    const page = hub.history(op.room, { since: op.since, limit: op.limit ?? HISTORY_LIMIT_DEFAULT, reverse: op.reverse })
    return then(page, ({ position, publications }) => ({
      fields: { room: op.room, seq: position.seq, epoch: position.epoch },
      json: { messages: encodeMessageList(publications) }
    }))
  }
}
