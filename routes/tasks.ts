import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { createBearerHook, type ApiKey } from '../lib/auth/bearer.js'
import { priorityOf } from '../lib/protocol/codec.js'
import { TASK_FIELDS } from '../lib/protocol/schemas.js'

export interface TaskRoutesOptions {
  apiKeys: readonly ApiKey[]
}

const TaskBody = Type.Object(TASK_FIELDS, { additionalProperties: false })

/** Runs tasks over HTTP for backends: registered under /api only when API_KEY is set. */
const taskRoutes: FastifyPluginAsync<TaskRoutesOptions> = async (fastify, opts) => {
  const { workerPool } = fastify

  fastify.addHook('onRequest', createBearerHook(opts.apiKeys))

  fastify.post<{ Body: Static<typeof TaskBody> }>('/tasks', { config: { scope: 'tasks' }, schema: { body: TaskBody } }, async request => {
    const { name, data, priority, retries, timeoutMs, key } = request.body
    const result = await workerPool.submit({ name, data, priority: priorityOf(priority), retries, timeoutMs, key })
    return { data: result ?? null }
  })

  fastify.get('/tasks/dead-letters', { config: { scope: 'read' } }, async () => ({ deadLetters: workerPool.deadLetters() }))
}

export default taskRoutes
