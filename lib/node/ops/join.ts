import { then } from '../../engine/composed.js'
import type { JoinOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

export const join: OpHandler<JoinOp> = {
  run (op, session, { hub, settings }) {
    const { room, since } = op
    if (!session.isIn(room) && session.rooms.size >= settings.maxRoomsPerConnection) {
      throw new OpError('too_many_rooms', `a connection may join at most ${settings.maxRoomsPerConnection} rooms`)
    }
    if (op.info !== undefined && Buffer.byteLength(JSON.stringify(op.info)) > settings.presenceInfoMaxBytes) {
      throw new OpError('bad_request', `join: info is over PRESENCE_INFO_MAX_BYTES (${settings.presenceInfoMaxBytes} bytes of JSON)`)
    }
    session.rooms.add(room)
    return then(hub.join(session, room, { since, watch: op.presence === true, info: op.info }), result => {
      const { position, recovery } = result
      const fields: Record<string, unknown> = { room, seq: position.seq, epoch: position.epoch }
      if (recovery !== undefined) {
        fields.recovered = recovery.recovered
        if (!recovery.recovered) fields.reason = recovery.reason
      }
      return { fields, after: () => { hub.finishJoin(session, room, result) } }
    })
  }
}
