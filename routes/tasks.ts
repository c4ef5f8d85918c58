import { Type, type Static } from '@sinclair/typebox'
import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { createBearerHook } from '../lib/bearer-auth.js'
import { TASK_FIELDS, priorityOf } from '../lib/protocol.js'
import { TaskError, type TaskErrorCode } from '../lib/task-types.js'

export interface TaskRoutesOptions {
  apiKey: string
}

const TaskBody = Type.Object(TASK_FIELDS, { additionalProperties: false })

const STATUS: Record<TaskErrorCode, number> = {
  bad_request: 400,
  unknown_task: 404,
  task_failed: 422,
  overloaded: 429,
  shutting_down: 503,
  // Only a connection's tasks are cancelled; listed for completeness.
  cancelled: 503,
  timeout: 504
}

/** Runs tasks over HTTP for backends: registered under /api only when API_KEY is set. */
const taskRoutes: FastifyPluginAsync<TaskRoutesOptions> = async (fastify, opts) => {
  const { workerPool } = fastify

  fastify.addHook('onRequest', createBearerHook(opts.apiKey))

  // Every error leaves in the { code, message } shape of the WebSocket protocol's error frames.
  fastify.setErrorHandler((error: FastifyError | TaskError, request, reply) => {
    if (error instanceof TaskError) {
      return reply.code(STATUS[error.code]).send({ code: error.code, message: error.message })
    }
    const status = error.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'task route failed')
      return reply.code(500).send({ code: 'internal', message: 'internal error' })
    }
    return reply.code(status).send({ code: 'bad_request', message: error.message })
  })

  fastify.post<{ Body: Static<typeof TaskBody> }>('/tasks', { schema: { body: TaskBody } }, async request => {
    const { name, data, priority, retries, timeoutMs, key } = request.body
    const result = await workerPool.submit({ name, data, priority: priorityOf(priority), retries, timeoutMs, key })
    return { data: result ?? null }
  })

  fastify.get('/tasks/dead-letters', async () => ({ deadLetters: workerPool.deadLetters() }))
}

export default taskRoutes
