import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { createBearerHook } from '../lib/auth/bearer.js'
import { ConflationKeySchema, PrioritySchema, RoomSchema, TtlSchema, priorityOf } from '../lib/protocol/codec.js'

export interface ApiRoutesOptions {
  apiKey: string
}

const RoomParams = Type.Object({ room: RoomSchema })
const PublishBody = Type.Object({
  data: Type.Unknown(),
  priority: Type.Optional(PrioritySchema),
  ttlMs: Type.Optional(TtlSchema),
  key: Type.Optional(ConflationKeySchema)
}, { additionalProperties: false })
const BroadcastBody = Type.Object({
  data: Type.Unknown(),
  priority: Type.Optional(PrioritySchema),
  ttlMs: Type.Optional(TtlSchema)
}, { additionalProperties: false })

/** Server-side publishing for backends: registered under /api only when API_KEY is set. */
const apiRoutes: FastifyPluginAsync<ApiRoutesOptions> = async (fastify, opts) => {
  const { hub } = fastify

  fastify.addHook('onRequest', createBearerHook(opts.apiKey))

  fastify.post<{ Params: Static<typeof RoomParams>, Body: Static<typeof PublishBody> }>('/rooms/:room/messages', {
    schema: { params: RoomParams, body: PublishBody }
  }, async (request, reply) => {
    const { data, priority, ttlMs, key } = request.body
    const { seq, recipients } = hub.publish(request.params.room, data, { priority: priorityOf(priority), ttlMs, key })
    return reply.code(202).send({ seq, recipients })
  })

  fastify.post<{ Body: Static<typeof BroadcastBody> }>('/broadcast', {
    schema: { body: BroadcastBody }
  }, async (request, reply) => {
    const { data, priority, ttlMs } = request.body
    const recipients = hub.broadcast(data, priorityOf(priority), ttlMs)
    return reply.code(202).send({ recipients })
  })

  fastify.get('/rooms', async () => ({ rooms: hub.listRooms() }))
}

export default apiRoutes
