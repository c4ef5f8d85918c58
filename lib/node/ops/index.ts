import type { ClientOp } from '../../protocol/schemas.js'
import { broadcast } from './broadcast.js'
import { history } from './history.js'
import { join } from './join.js'
import { leave } from './leave.js'
import { ping } from './ping.js'
import { presence } from './presence.js'
import { publish } from './publish.js'
import { refresh } from './refresh.js'
import { say } from './say.js'
import { task } from './task.js'
import type { OpHandler } from './types.js'

/** One handler per client op. */
export const OP_HANDLERS: { [K in ClientOp['op']]: OpHandler<Extract<ClientOp, { op: K }>> } = {
  join,
  leave,
  publish,
  say,
  broadcast,
  history,
  presence,
  refresh,
  task,
  ping
}
