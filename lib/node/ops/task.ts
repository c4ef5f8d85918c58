import { priorityOf } from '../../protocol/codec.js'
import type { TaskOp } from '../../protocol/schemas.js'
import { OpError, type OpHandler } from './types.js'

/** A task's outcome is always answered, ref or not, since the client asked for a result. */
export const task: OpHandler<TaskOp> = {
  alwaysAnswered: true,
  async run (op, session, { workerPool, isDraining, tokens }) {
    if (isDraining()) throw new OpError('shutting_down', 'the server is shutting down')
    // The worker pool is no room's: with tokens in use, anonymous connections do not get it.
    if (tokens !== undefined && session.user === undefined) throw new OpError('forbidden', 'an anonymous connection cannot run tasks')
    const result = await workerPool.submit({
      name: op.name,
      data: op.data,
      priority: priorityOf(op.priority),
      retries: op.retries,
      timeoutMs: op.timeoutMs,
      key: op.key,
      owner: session
    })
    return { fields: { data: result ?? null } }
  }
}
