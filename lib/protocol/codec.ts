import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { ErrorCode } from './errors.js'
import { PRIORITY_NAMES, parsePriority, type Priority } from './priority.js'

/** Wire protocol version announced in the welcome frame. */
export const PROTOCOL_VERSION = 1

export const ROOM_PATTERN = '^[A-Za-z0-9_\\-.:/@]{1,128}$'
const ROOM_REGEXP = new RegExp(ROOM_PATTERN)


export const RefSchema = Type.Union([Type.Number(), Type.String({ maxLength: 64 })])
export const RoomSchema = Type.String({ pattern: ROOM_PATTERN, description: '1–128 characters from letters, digits and _-.:/@' })
export const PrioritySchema = Type.Union([
  Type.Union(PRIORITY_NAMES.map(name => Type.Literal(name))),
  Type.Integer({ minimum: 0, maximum: PRIORITY_NAMES.length - 1 })
])
export const TtlSchema = Type.Integer({ minimum: 1, maximum: 86_400_000 })
export const ConflationKeySchema = Type.String({ minLength: 1, maxLength: 128 })
export const TaskNameSchema = Type.String({ minLength: 1, maxLength: 64 })

/** A task request's fields, shared by the task op and POST /api/tasks. */
export const TASK_FIELDS = {
  name: TaskNameSchema,
  data: Type.Optional(Type.Unknown()),
  priority: Type.Optional(PrioritySchema),
  retries: Type.Optional(Type.Integer({ minimum: 0 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 }))
}

const opSchemas = {
  join: Type.Object({ op: Type.Literal('join'), ref: Type.Optional(RefSchema), room: RoomSchema }),
  leave: Type.Object({ op: Type.Literal('leave'), ref: Type.Optional(RefSchema), room: RoomSchema }),
  publish: Type.Object({
    op: Type.Literal('publish'),
    ref: Type.Optional(RefSchema),
    room: RoomSchema,
    data: Type.Unknown(),
    priority: Type.Optional(PrioritySchema),
    ttlMs: Type.Optional(TtlSchema),
    key: Type.Optional(ConflationKeySchema)
  }),
  broadcast: Type.Object({
    op: Type.Literal('broadcast'),
    ref: Type.Optional(RefSchema),
    data: Type.Unknown(),
    priority: Type.Optional(PrioritySchema)
  }),
  task: Type.Object({ op: Type.Literal('task'), ref: Type.Optional(RefSchema), ...TASK_FIELDS }),
  ping: Type.Object({ op: Type.Literal('ping'), ref: Type.Optional(RefSchema) })
} satisfies Record<string, TSchema>

type OpName = keyof typeof opSchemas
const OP_NAMES = Object.keys(opSchemas) as OpName[]
const checks = Object.fromEntries(
  OP_NAMES.map(name => [name, TypeCompiler.Compile(opSchemas[name])])
) as { [K in OpName]: TypeCheck<(typeof opSchemas)[K]> }

export type Ref = Static<typeof RefSchema>
export type JoinOp = Static<typeof opSchemas.join>
export type LeaveOp = Static<typeof opSchemas.leave>
export type PublishOp = Static<typeof opSchemas.publish>
export type BroadcastOp = Static<typeof opSchemas.broadcast>
export type TaskOp = Static<typeof opSchemas.task>
export type PingOp = Static<typeof opSchemas.ping>
/** `msg:<text>` of the seed protocol: publish the text to every room the connection joined. */
export interface SayOp { op: 'say', text: string, ref?: undefined }
export type ClientOp = JoinOp | LeaveOp | PublishOp | BroadcastOp | TaskOp | PingOp | SayOp

export type Decoded =
  | { ok: true, value: ClientOp }
  | { ok: false, ref: Ref | undefined, message: string }

export interface DecodeOptions {
  /** The task that `task:<text>` runs. */
  defaultTask: string
}

/** Parses one text frame: a JSON op, or one of the seed article's text commands. */
export function decodeClientFrame (text: string, options: DecodeOptions): Decoded {
  const first = text.charCodeAt(0)
  // '{' starts JSON; anything else is a text command or garbage.
  if (first !== 0x7b) return decodeTextCommand(text, options)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return { ok: false, ref: undefined, message: `malformed JSON: ${(error as Error).message}` }
  }
  return decodeOp(parsed)
}

export function decodeOp (parsed: unknown): Decoded {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, ref: undefined, message: 'a frame must be a JSON object with an "op" field' }
  }
  const candidate = parsed as Record<string, unknown>
  const ref = validRef(candidate.ref)
  if (candidate.ref !== undefined && ref === undefined) {
    return { ok: false, ref: undefined, message: 'ref must be a number or a string of at most 64 characters' }
  }
  const op = candidate.op
  if (typeof op !== 'string' || !Object.hasOwn(checks, op)) {
    return { ok: false, ref, message: `unknown op ${JSON.stringify(op)}; expected one of ${OP_NAMES.join(', ')}` }
  }
  const check = checks[op as OpName]
  if (!check.Check(candidate)) {
    return { ok: false, ref, message: describeFirstError(check, candidate, op) }
  }
  return { ok: true, value: candidate as ClientOp }
}

function describeFirstError (check: TypeCheck<TSchema>, value: unknown, op: string): string {
  const error = check.Errors(value).First()
  if (error === undefined) return `invalid ${op} op`
  const field = error.path === '' ? 'frame' : error.path.slice(1).replaceAll('/', '.')
  if (error.value === undefined) return `${op}: ${field} is required`
  if (field === 'priority') return `${op}: priority must be one of ${PRIORITY_NAMES.join(', ')} or 0–3`
  if (field === 'room') return `${op}: room must be 1–128 characters from letters, digits and _-.:/@`
  return `${op}: ${field} ${error.message.toLowerCase()}`
}

function validRef (ref: unknown): Ref | undefined {
  if (typeof ref === 'number' && Number.isFinite(ref)) return ref
  if (typeof ref === 'string' && ref.length <= 64) return ref
  return undefined
}

function decodeTextCommand (text: string, options: DecodeOptions): Decoded {
  const colon = text.indexOf(':')
  const command = colon === -1 ? text : text.slice(0, colon)
  const argument = colon === -1 ? '' : text.slice(colon + 1)
  switch (command) {
    case 'join':
    case 'leave':
      if (!ROOM_REGEXP.test(argument)) {
        return { ok: false, ref: undefined, message: `${command}: room must be 1–128 characters from letters, digits and _-.:/@` }
      }
      return { ok: true, value: { op: command, room: argument } }
    case 'msg':
      return { ok: true, value: { op: 'say', text: argument } }
    case 'task':
      return { ok: true, value: { op: 'task', name: options.defaultTask, data: argument } }
    default:
      return { ok: false, ref: undefined, message: 'expected a JSON object or a text command join:<room>, leave:<room>, msg:<text> or task:<text>' }
  }
}

/** Resolves an op's optional priority (already schema-checked) to a level; normal when absent. */
export function priorityOf (value: string | number | undefined): Priority {
  return value === undefined ? 2 : (parsePriority(value) as Priority)
}

// Server → client. Room names and client ids come from restricted alphabets, so they are inlined
// without escaping; data and refs go through JSON.stringify.

export function encodeWelcome (client: string, heartbeatMs: number, maxPayload: number): string {
  return `{"op":"welcome","client":"${client}","version":${PROTOCOL_VERSION},"heartbeatMs":${heartbeatMs},"maxPayload":${maxPayload}}`
}

export function encodeReply (ref: Ref | undefined, fields?: Record<string, unknown>): string {
  const head = ref === undefined ? '{"op":"reply","ok":true' : `{"op":"reply","ref":${JSON.stringify(ref)},"ok":true`
  if (fields === undefined) return head + '}'
  const body = JSON.stringify(fields)
  return body.length === 2 ? head + '}' : head + ',' + body.slice(1)
}

export function encodeError (ref: Ref | undefined, code: ErrorCode, message: string): string {
  const refPart = ref === undefined ? '' : `"ref":${JSON.stringify(ref)},`
  return `{"op":"error",${refPart}"code":"${code}","message":${JSON.stringify(message)}}`
}

export function encodePong (ref: Ref | undefined): string {
  return ref === undefined ? '{"op":"pong"}' : `{"op":"pong","ref":${JSON.stringify(ref)}}`
}

export function encodeMessage (room: string, seq: number, dataJson: string, priority: Priority, ts: number, from: string | undefined): string {
  const fromPart = from === undefined ? '' : `,"from":"${from}"`
  return `{"op":"message","room":"${room}","seq":${seq},"data":${dataJson},"priority":"${PRIORITY_NAMES[priority]}","ts":${ts}${fromPart}}`
}

export function encodeBroadcast (dataJson: string, priority: Priority, ts: number): string {
  return `{"op":"broadcast","data":${dataJson},"priority":"${PRIORITY_NAMES[priority]}","ts":${ts}}`
}
