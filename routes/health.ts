import type { FastifyPluginAsync } from 'fastify'
import { shedUnderPressure } from '../plugins/pressure.js'

/** Liveness answers while the process serves HTTP; readiness turns 503 as soon as shutdown starts. */
const healthRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.get('/healthz', async () => ({ status: 'ok' }))

  fastify.get('/readyz', { config: { pressureHandler: shedUnderPressure } }, async (_request, reply) => {
    if (fastify.lifecycle.draining) return reply.code(503).send({ status: 'draining' })
    if (!fastify.engine.ready()) return reply.code(503).send({ status: 'engine_unavailable' })
    const { connections, rooms } = fastify.hub.stats()
    return { status: 'ready', connections, rooms }
  })
}

export default healthRoutes
