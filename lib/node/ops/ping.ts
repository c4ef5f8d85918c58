import { encodePong } from '../../protocol/codec.js'
import type { PingOp } from '../../protocol/schemas.js'
import type { OpHandler } from './types.js'

export const ping: OpHandler<PingOp> = {
  alwaysAnswered: true,
  run (op) {
    return { payload: encodePong(op.ref) }
  }
}
