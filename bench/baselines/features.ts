import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { fail, pong, reply, taskPool, type WorkerReply } from './rooms.js'

/**
 * Switchboard's per-op work that bare `ws` does not do, written inline in one connection handler:
 * each field checked as Switchboard's schemas check it, a token bucket per connection, the membership
 * check, a seq and epoch per room with its last 256 messages kept in a ring (HISTORY_SIZE's default;
 * kept and not served, since only what keeping them costs is measured),
 * a bound on what a member may have buffered, and for tasks a bound on those in flight and a deadline
 * that aborts the worker. No priority queues, metrics, engine seam or plugins: the least a Node server
 * with these features does per op, so that their own cost can be told from Switchboard's architecture.
 * ws-features-server.ts serves it on bare ws, features-in-app-server.ts beside the whole Switchboard app.
 */

const HISTORY_SIZE = 256
const ROOM = /^[A-Za-z0-9_\-.:/@]{1,128}$/
const PRIORITIES = ['critical', 'high', 'normal', 'low']
const RATE_PER_SEC = Number(process.env.RATE_LIMIT_PER_SEC ?? 100)
const RATE_BURST = Number(process.env.RATE_LIMIT_BURST ?? 200)
/** A member with more than this buffered is skipped, as a full outbox sheds. */
const MAX_BUFFERED = 1 << 20
const MAX_TASKS_IN_FLIGHT = 64
const TASK_TIMEOUT_MS = 30_000
const TEXT = { binary: false }

interface Kept {
  readonly data: string
  readonly priority: number
  readonly ts: number
  readonly from: string
  readonly seq: number
}

interface Room {
  readonly members: Set<WebSocket>
  readonly epoch: string
  readonly ring: (Kept | undefined)[]
  seq: number
}

/** What piscina needs of an abort signal; one deadline sweep aborts tasks past their time. */
class Deadline {
  aborted = false
  reason: unknown = undefined
  listener: (() => void) | undefined

  constructor (readonly at: number) {}

  addEventListener (_type: 'abort', listener: () => void): void { this.listener = listener }
  removeEventListener (): void { this.listener = undefined }
}

const rooms = new Map<string, Room>()
const running = new Set<Deadline>()
let tasksInFlight = 0
let nextId = 0

setInterval(() => {
  const now = performance.now()
  for (const deadline of running) {
    if (deadline.at > now) continue
    deadline.aborted = true
    deadline.reason = 'timeout'
    deadline.listener?.()
  }
}, 1000).unref()

const validRef = (ref: unknown): boolean => ref === undefined || (typeof ref === 'number' && Number.isFinite(ref)) || (typeof ref === 'string' && ref.length <= 64)
const optionalString = (value: unknown, max: number): boolean => value === undefined || (typeof value === 'string' && value.length >= 1 && value.length <= max)
const optionalInteger = (value: unknown, min: number, max: number): boolean => value === undefined || (Number.isInteger(value) && (value as number) >= min && (value as number) <= max)

function priorityLevel (value: unknown): number {
  if (value === undefined) return 2
  if (typeof value === 'string') return PRIORITIES.indexOf(value)
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 3 ? value as number : -1
}

export function serveWithFeatures (socket: WebSocket): void {
  const id = `b${(++nextId).toString(36)}`
  const joined = new Set<string>()
  let tokens = RATE_BURST
  let refilledAt = performance.now()
  let ownTasks = 0
  socket.send(`{"op":"welcome","client":"${id}","version":1,"heartbeatMs":0,"maxPayload":65536}`)

  const publish = (op: Record<string, unknown>): void => {
    const name = op.room as string
    const priority = priorityLevel(op.priority)
    if (!ROOM.test(name) || !('data' in op) || priority === -1 || !optionalInteger(op.ttlMs, 1, 86_400_000) ||
      !optionalString(op.key, 128) || !optionalString(op.id, 64)) return fail(socket, op.ref, 'bad_request')
    const room = joined.has(name) ? rooms.get(name) : undefined
    if (room === undefined) return fail(socket, op.ref, 'not_member')
    const seq = ++room.seq
    const now = Date.now()
    const kept: Kept = { data: JSON.stringify(op.data) ?? 'null', priority, ts: now, from: id, seq }
    room.ring[seq % HISTORY_SIZE] = kept
    const frame = Buffer.from(`{"op":"message","room":"${name}","seq":${seq},"data":${kept.data},"priority":"${PRIORITIES[priority]}","ts":${now},"from":"${id}"}`)
    for (const member of room.members) {
      if (member.bufferedAmount <= MAX_BUFFERED) member.send(frame, TEXT)
    }
    reply(socket, op.ref, `,"seq":${seq}`)
  }

  const runTask = (op: Record<string, unknown>): void => {
    if (!optionalString(op.name, 64) || op.name === undefined || priorityLevel(op.priority) === -1 ||
      !optionalInteger(op.retries, 0, Number.MAX_SAFE_INTEGER) || !optionalInteger(op.timeoutMs, 1, Number.MAX_SAFE_INTEGER) ||
      !optionalString(op.key, 128)) return fail(socket, op.ref, 'bad_request')
    if (tasksInFlight >= MAX_TASKS_IN_FLIGHT || ownTasks >= MAX_TASKS_IN_FLIGHT) return fail(socket, op.ref, 'overloaded')
    tasksInFlight++
    ownTasks++
    const timeoutMs = Math.min((op.timeoutMs as number | undefined) ?? TASK_TIMEOUT_MS, TASK_TIMEOUT_MS)
    const deadline = new Deadline(performance.now() + timeoutMs)
    running.add(deadline)
    const settle = (): void => {
      running.delete(deadline)
      tasksInFlight--
      ownTasks--
    }
    taskPool().run({ name: op.name, data: op.data, attempt: 1, deadline: Date.now() + timeoutMs }, { signal: deadline }).then(
      (outcome: WorkerReply) => {
        settle()
        if (!outcome.ok) return fail(socket, op.ref, 'task_failed')
        reply(socket, op.ref, `,"data":${JSON.stringify(outcome.value) ?? 'null'}`)
      },
      () => {
        settle()
        fail(socket, op.ref, deadline.aborted ? 'timeout' : 'task_failed')
      }
    )
  }

  socket.on('message', (raw: Buffer, isBinary: boolean) => {
    let op: Record<string, unknown>
    try {
      op = JSON.parse(raw.toString()) as Record<string, unknown>
    } catch {
      return fail(socket, undefined, 'bad_request')
    }
    if (isBinary || typeof op !== 'object' || op === null || Array.isArray(op) || !validRef(op.ref)) return fail(socket, undefined, 'bad_request')
    const now = performance.now()
    tokens = Math.min(RATE_BURST, tokens + (now - refilledAt) * RATE_PER_SEC / 1000)
    refilledAt = now
    if (tokens < 1) return fail(socket, op.ref, 'rate_limited')
    tokens--
    const name = op.room
    switch (op.op) {
      case 'join': {
        if (typeof name !== 'string' || !ROOM.test(name)) return fail(socket, op.ref, 'bad_request')
        let room = rooms.get(name)
        if (room === undefined) {
          room = { members: new Set(), epoch: randomBytes(6).toString('base64url'), ring: new Array(HISTORY_SIZE), seq: 0 }
          rooms.set(name, room)
        }
        room.members.add(socket)
        joined.add(name)
        return reply(socket, op.ref, `,"room":"${name}","seq":${room.seq},"epoch":"${room.epoch}"`)
      }
      case 'leave': {
        if (typeof name !== 'string' || !ROOM.test(name)) return fail(socket, op.ref, 'bad_request')
        if (joined.delete(name)) rooms.get(name)?.members.delete(socket)
        return reply(socket, op.ref, '')
      }
      case 'publish':
        if (typeof name !== 'string') return fail(socket, op.ref, 'bad_request')
        return publish(op)
      case 'task':
        return runTask(op)
      case 'ping':
        return pong(socket, op.ref)
      default:
        fail(socket, op.ref, 'bad_request')
    }
  })
  socket.once('close', () => {
    for (const name of joined) rooms.get(name)?.members.delete(socket)
    joined.clear()
  })
}
