import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { ErrorCode } from './errors.js'
import { PRIORITY_NAMES, parsePriority, type Priority } from './priority.js'
import { OP_SCHEMAS, ROOM_PATTERN, type ClientOp, type OpName, type Ref } from './schemas.js'

/** Wire protocol version announced in the welcome frame. */
export const PROTOCOL_VERSION = 1

const ROOM_REGEXP = new RegExp(ROOM_PATTERN)
const OP_NAMES = Object.keys(OP_SCHEMAS) as OpName[]
const checks = Object.fromEntries(
  OP_NAMES.map(name => [name, TypeCompiler.Compile(OP_SCHEMAS[name])])
) as { [K in OpName]: TypeCheck<(typeof OP_SCHEMAS)[K]> }

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

/** The fields of a room message as the codec needs them (a Publication of the engine fits). */
export interface MessageFields {
  readonly room: string
  readonly seq: number
  /** JSON text. */
  readonly data: string
  readonly priority: Priority
  readonly ts: number
  readonly from?: string | undefined
  /** The publisher's `sub`, when it connected with a token. */
  readonly user?: string | undefined
}

function messageBody (message: MessageFields): string {
  const fromPart = message.from === undefined ? '' : `,"from":"${message.from}"`
  const userPart = message.user === undefined ? '' : `,"user":${JSON.stringify(message.user)}`
  return `"seq":${message.seq},"data":${message.data},"priority":"${PRIORITY_NAMES[message.priority]}","ts":${message.ts}${fromPart}${userPart}`
}

export function encodeMessage (message: MessageFields): string {
  return `{"op":"message","room":"${message.room}",${messageBody(message)}}`
}

/** The room's stream began a new life: earlier positions are void and seqs start again at 1. */
export function encodeEpoch (room: string, epoch: string): string {
  return `{"op":"epoch","room":"${room}","epoch":${JSON.stringify(epoch)}}`
}

/** The seqs of a room that a connection will not get, as ascending inclusive ranges, and why. */
export function encodeGap (room: string, ranges: readonly (readonly [number, number])[], reason: string): string {
  return `{"op":"gap","room":"${room}","ranges":${JSON.stringify(ranges)},"reason":"${reason}"}`
}

export function encodePresenceEvent (kind: 'joined' | 'left', room: string, client: string, user: string | undefined): string {
  const userPart = user === undefined ? '' : `,"user":${JSON.stringify(user)}`
  return `{"op":"${kind}","room":"${room}","client":"${client}"${userPart}}`
}

/** `messages` as a JSON array built from stored JSON text, without parsing the data again. */
export function encodeMessageList (messages: readonly MessageFields[]): string {
  let list = '['
  for (let i = 0; i < messages.length; i++) list += (i === 0 ? '{' : ',{') + messageBody(messages[i] as MessageFields) + '}'
  return list + ']'
}

/** A reply with fields that are already JSON text (e.g. a message list), after the plain ones. */
export function encodeReplyWithJson (ref: Ref | undefined, fields: Record<string, unknown>, json: Record<string, string>): string {
  const plain = encodeReply(ref, fields)
  let extra = ''
  for (const [name, text] of Object.entries(json)) extra += `,"${name}":${text}`
  return plain.slice(0, -1) + extra + '}'
}

export function encodeBroadcast (dataJson: string, priority: Priority, ts: number): string {
  return `{"op":"broadcast","data":${dataJson},"priority":"${PRIORITY_NAMES[priority]}","ts":${ts}}`
}
