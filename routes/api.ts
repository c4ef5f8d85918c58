import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { createBearerHook, type ApiKey, type ApiScope } from '../lib/auth/bearer.js'
import { priorityOf } from '../lib/protocol/codec.js'
import { PRIORITY_NAMES } from '../lib/protocol/priority.js'
import {
  HISTORY_FIELDS,
  HISTORY_LIMIT_DEFAULT,
  PRESENCE_FIELDS,
  PRESENCE_LIMIT_DEFAULT,
  PUBLISH_FIELDS,
  PrioritySchema,
  PublishIdSchema,
  RoomSchema,
  TtlSchema
} from '../lib/protocol/schemas.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The API key scope a route needs (routes/api.ts, routes/tasks.ts). */
    scope?: ApiScope
  }
}

export interface ApiRoutesOptions {
  apiKeys: readonly ApiKey[]
}

const RoomParams = Type.Object({ room: RoomSchema })
const PublishBody = Type.Object(PUBLISH_FIELDS, { additionalProperties: false })
const PublishHeaders = Type.Object({ 'idempotency-key': Type.Optional(PublishIdSchema) })
const BroadcastBody = Type.Object({
  data: Type.Unknown(),
  priority: Type.Optional(PrioritySchema),
  ttlMs: Type.Optional(TtlSchema)
}, { additionalProperties: false })
const HistoryQuery = Type.Object(HISTORY_FIELDS, { additionalProperties: false })
const PresenceQuery = Type.Object(PRESENCE_FIELDS, { additionalProperties: false })

/** Server-side publishing and reading for backends: registered under /api only when API_KEY is set. */
const apiRoutes: FastifyPluginAsync<ApiRoutesOptions> = async (fastify, opts) => {
  const { hub } = fastify

  fastify.addHook('onRequest', createBearerHook(opts.apiKeys))

  fastify.post<{ Params: Static<typeof RoomParams>, Body: Static<typeof PublishBody>, Headers: Static<typeof PublishHeaders> }>('/rooms/:room/messages', {
    config: { scope: 'publish' },
    schema: { params: RoomParams, body: PublishBody, headers: PublishHeaders }
  }, async (request, reply) => {
    const { data, priority, ttlMs, key } = request.body
    const id = request.body.id ?? request.headers['idempotency-key']
    const { seq, duplicate, recipients } = await hub.publish(request.params.room, data, { priority: priorityOf(priority), ttlMs, key, id })
    return reply.code(202).send(duplicate ? { seq, recipients, duplicate } : { seq, recipients })
  })

  fastify.get<{ Params: Static<typeof RoomParams>, Querystring: Static<typeof HistoryQuery> }>('/rooms/:room/history', {
    config: { scope: 'read' },
    schema: { params: RoomParams, querystring: HistoryQuery }
  }, async request => {
    const { since, limit, reverse } = request.query
    const { room } = request.params
    const { position, publications } = await hub.history(room, { since, limit: limit ?? HISTORY_LIMIT_DEFAULT, reverse })
    const messages = publications.map(({ seq, data, priority, ts, from, user }) => ({ seq, data: JSON.parse(data) as unknown, priority: PRIORITY_NAMES[priority], ts, from, user }))
    return { room, seq: position.seq, epoch: position.epoch, messages }
  })

  fastify.get<{ Params: Static<typeof RoomParams>, Querystring: Static<typeof PresenceQuery> }>('/rooms/:room/presence', {
    config: { scope: 'read' },
    schema: { params: RoomParams, querystring: PresenceQuery }
  }, async request => {
    const { room } = request.params
    const page = await hub.presence(room, request.query.limit ?? PRESENCE_LIMIT_DEFAULT, request.query.cursor)
    return { room, ...page }
  })

  fastify.post<{ Body: Static<typeof BroadcastBody> }>('/broadcast', {
    config: { scope: 'broadcast' },
    schema: { body: BroadcastBody }
  }, async (request, reply) => {
    const { data, priority, ttlMs } = request.body
    const recipients = await hub.broadcast(data, priorityOf(priority), ttlMs)
    return reply.code(202).send({ recipients })
  })

  fastify.get('/rooms', { config: { scope: 'read' } }, async () => ({ rooms: hub.listRooms() }))

  // The nodes whose heartbeats are current: one with the memory engine, every node of a cluster with Redis.
  fastify.get('/nodes', { config: { scope: 'read' } }, async () => ({ nodes: await fastify.engine.nodes.list() }))
}

export default apiRoutes
