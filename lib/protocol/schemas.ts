import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { PRIORITY_NAMES } from './priority.js'

export const ROOM_PATTERN = '^[A-Za-z0-9_\\-.:/@]{1,128}$'

export const RefSchema = Type.Union([Type.Number(), Type.String({ maxLength: 64 })])
export const RoomSchema = Type.String({ pattern: ROOM_PATTERN, description: '1–128 characters from letters, digits and _-.:/@' })
export const PrioritySchema = Type.Union([
  Type.Union(PRIORITY_NAMES.map(name => Type.Literal(name))),
  Type.Integer({ minimum: 0, maximum: PRIORITY_NAMES.length - 1 })
])
export const TtlSchema = Type.Integer({ minimum: 1, maximum: 86_400_000 })
export const ConflationKeySchema = Type.String({ minLength: 1, maxLength: 128 })
export const TaskNameSchema = Type.String({ minLength: 1, maxLength: 64 })
/** A publish's idempotency id: a repeat in the same room within IDEMPOTENCY_TTL_MS is not stored again. */
export const PublishIdSchema = Type.String({ minLength: 1, maxLength: 64 })
export const SeqSchema = Type.Integer({ minimum: 0 })
export const EpochSchema = Type.String({ minLength: 1, maxLength: 64 })
export const HISTORY_LIMIT_DEFAULT = 100
export const HISTORY_LIMIT_MAX = 1000
export const HistoryLimitSchema = Type.Integer({ minimum: 1, maximum: HISTORY_LIMIT_MAX })
export const PRESENCE_LIMIT_DEFAULT = 100
export const PRESENCE_LIMIT_MAX = 1000
export const PresenceLimitSchema = Type.Integer({ minimum: 1, maximum: PRESENCE_LIMIT_MAX })
export const CursorSchema = Type.String({ minLength: 1, maxLength: 64 })

/** A task request's fields, shared by the task op and POST /api/tasks. */
export const TASK_FIELDS = {
  name: TaskNameSchema,
  data: Type.Optional(Type.Unknown()),
  priority: Type.Optional(PrioritySchema),
  retries: Type.Optional(Type.Integer({ minimum: 0 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 }))
}

/** A room message's fields, shared by the publish op and POST /api/rooms/:room/messages. */
export const PUBLISH_FIELDS = {
  data: Type.Unknown(),
  priority: Type.Optional(PrioritySchema),
  ttlMs: Type.Optional(TtlSchema),
  key: Type.Optional(ConflationKeySchema),
  id: Type.Optional(PublishIdSchema)
}

/** A history query's fields, shared by the history op and GET /api/rooms/:room/history. */
export const HISTORY_FIELDS = {
  since: Type.Optional(SeqSchema),
  limit: Type.Optional(HistoryLimitSchema),
  reverse: Type.Optional(Type.Boolean())
}

export const PRESENCE_FIELDS = {
  limit: Type.Optional(PresenceLimitSchema),
  cursor: Type.Optional(CursorSchema)
}

const ref = Type.Optional(RefSchema)

export const OP_SCHEMAS = {
  join: Type.Object({
    op: Type.Literal('join'),
    ref,
    room: RoomSchema,
    /** Recover what was published after this position. */
    since: Type.Optional(Type.Object({ seq: SeqSchema, epoch: EpochSchema })),
    /** Receive joined/left events for this room. */
    presence: Type.Optional(Type.Boolean()),
    /** Shown to others in presence; its JSON is bounded by PRESENCE_INFO_MAX_BYTES. */
    info: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** A per-room token: `room` and `sub` claims naming this room and this connection's user. */
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }))
  }),
  leave: Type.Object({ op: Type.Literal('leave'), ref, room: RoomSchema }),
  publish: Type.Object({ op: Type.Literal('publish'), ref, room: RoomSchema, ...PUBLISH_FIELDS }),
  broadcast: Type.Object({
    op: Type.Literal('broadcast'),
    ref,
    data: Type.Unknown(),
    priority: Type.Optional(PrioritySchema)
  }),
  history: Type.Object({ op: Type.Literal('history'), ref, room: RoomSchema, ...HISTORY_FIELDS }),
  presence: Type.Object({ op: Type.Literal('presence'), ref, room: RoomSchema, ...PRESENCE_FIELDS }),
  /** A new connection token before the current one expires: same `sub`, later `exp`. */
  refresh: Type.Object({ op: Type.Literal('refresh'), ref, token: Type.String({ minLength: 1, maxLength: 8192 }) }),
  task: Type.Object({ op: Type.Literal('task'), ref, ...TASK_FIELDS }),
  ping: Type.Object({ op: Type.Literal('ping'), ref })
} satisfies Record<string, TSchema>

export type OpName = keyof typeof OP_SCHEMAS
export type Ref = Static<typeof RefSchema>
export type JoinOp = Static<typeof OP_SCHEMAS.join>
export type LeaveOp = Static<typeof OP_SCHEMAS.leave>
export type PublishOp = Static<typeof OP_SCHEMAS.publish>
export type BroadcastOp = Static<typeof OP_SCHEMAS.broadcast>
export type HistoryOp = Static<typeof OP_SCHEMAS.history>
export type PresenceOp = Static<typeof OP_SCHEMAS.presence>
export type RefreshOp = Static<typeof OP_SCHEMAS.refresh>
export type TaskOp = Static<typeof OP_SCHEMAS.task>
export type PingOp = Static<typeof OP_SCHEMAS.ping>
/** `msg:<text>` of the seed protocol: publish the text to every room the connection joined. */
export interface SayOp { op: 'say', text: string, ref?: undefined }
export type ClientOp = JoinOp | LeaveOp | PublishOp | BroadcastOp | HistoryOp | PresenceOp | RefreshOp | TaskOp | PingOp | SayOp
