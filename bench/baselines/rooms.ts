import { Piscina } from 'piscina'
import { WebSocketServer, type WebSocket } from 'ws'
import { listenAddress } from './listen.js'

/**
 * Protocol v1 reduced to join, leave, publish, task and ping, for the bare `ws` and bare Fastify
 * baselines: no validation beyond JSON.parse, no priorities, no queues, no rate limits. A publish is
 * serialised once and handed to `ws.send` once per member, which is the floor of what a Node server
 * built on the same library does. The frame text is encoded to a Buffer once so that `ws` does not
 * re-encode the string for every recipient. A task goes straight to a one-thread piscina pool on
 * Switchboard's worker file, with no queue, timeout, retry or idempotency of its own.
 */

interface Room {
  readonly members: Set<WebSocket>
  seq: number
}

/** A client frame as the baselines read it: JSON.parse and no validation beyond the fields' types. */
export interface Op {
  op?: unknown
  ref?: unknown
  room?: unknown
  name?: unknown
  data?: unknown
  priority?: unknown
}

export interface WorkerReply {
  ok: boolean
  value?: unknown
  message?: string
}

let pool: Piscina | undefined

/** Started on the first task, so that the delivery workloads run without a worker thread. */
export function taskPool (): Piscina {
  if (pool === undefined) {
    pool = new Piscina({
      filename: new URL('../../lib/tasks/worker.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: 1,
      atomics: 'disabled',
      workerData: { tasksModule: undefined }
    })
    // A worker that dies fails its task (answered task_failed); it must not take the server down.
    pool.on('error', (error: Error) => console.error(`piscina: ${error.message}`))
  }
  return pool
}

function runTask (socket: WebSocket, op: Op): void {
  taskPool().run({ name: op.name, data: op.data, attempt: 1, deadline: Date.now() + 10_000 }).then(
    (outcome: WorkerReply) => {
      if (!outcome.ok) return fail(socket, op.ref, 'task_failed')
      reply(socket, op.ref, `,"data":${JSON.stringify(outcome.value) ?? 'null'}`)
    },
    () => fail(socket, op.ref, 'task_failed')
  )
}

const rooms = new Map<string, Room>()
const TEXT = { binary: false }
let nextId = 0

export function reply (socket: WebSocket, ref: unknown, fields: string): void {
  if (ref === undefined) return
  socket.send(`{"op":"reply","ref":${JSON.stringify(ref)},"ok":true${fields}}`)
}

export function fail (socket: WebSocket, ref: unknown, code: string): void {
  const refPart = ref === undefined ? '' : `"ref":${JSON.stringify(ref)},`
  socket.send(`{"op":"error",${refPart}"code":"${code}","message":"${code}"}`)
}

export function pong (socket: WebSocket, ref: unknown): void {
  socket.send(ref === undefined ? '{"op":"pong"}' : `{"op":"pong","ref":${JSON.stringify(ref)}}`)
}

/** A bare `ws` server on PORT (any path is accepted) that hands each connection to `serve`. */
export function listenOnBareWs (serve: (socket: WebSocket) => void): void {
  const { port, host } = listenAddress()
  const server = new WebSocketServer({ port, host, perMessageDeflate: false, maxPayload: 64 * 1024 })
  server.on('connection', serve)
  server.on('error', error => {
    console.error(error)
    process.exit(1)
  })
}

function leave (socket: WebSocket, name: string): void {
  const room = rooms.get(name)
  if (room === undefined) return
  room.members.delete(socket)
  if (room.members.size === 0) rooms.delete(name)
}

/** Serves one connection until it closes. */
export function serveV1 (socket: WebSocket): void {
  const id = `b${(++nextId).toString(36)}`
  const joined = new Set<string>()
  socket.send(`{"op":"welcome","client":"${id}","version":1,"heartbeatMs":0,"maxPayload":65536}`)
  socket.on('message', (raw: Buffer, isBinary: boolean) => {
    let op: Op
    try {
      op = JSON.parse(raw.toString()) as Op
    } catch {
      fail(socket, undefined, 'bad_request')
      return
    }
    if (isBinary || typeof op !== 'object' || op === null) {
      fail(socket, undefined, 'bad_request')
      return
    }
    const name = op.room
    switch (op.op) {
      case 'join': {
        if (typeof name !== 'string') return fail(socket, op.ref, 'bad_request')
        let room = rooms.get(name)
        if (room === undefined) {
          room = { members: new Set(), seq: 0 }
          rooms.set(name, room)
        }
        room.members.add(socket)
        joined.add(name)
        return reply(socket, op.ref, `,"room":${JSON.stringify(name)},"seq":${room.seq}`)
      }
      case 'leave': {
        if (typeof name !== 'string') return fail(socket, op.ref, 'bad_request')
        if (joined.delete(name)) leave(socket, name)
        return reply(socket, op.ref, '')
      }
      case 'publish': {
        const room = typeof name === 'string' && joined.has(name) ? rooms.get(name) : undefined
        if (room === undefined) return fail(socket, op.ref, 'not_member')
        const seq = ++room.seq
        const priority = JSON.stringify(op.priority ?? 'normal')
        const frame = Buffer.from(
          `{"op":"message","room":${JSON.stringify(name)},"seq":${seq},"data":${JSON.stringify(op.data) ?? 'null'},"priority":${priority},"ts":${Date.now()},"from":"${id}"}`
        )
        for (const member of room.members) member.send(frame, TEXT)
        return reply(socket, op.ref, `,"seq":${seq}`)
      }
      case 'task':
        if (typeof op.name !== 'string') return fail(socket, op.ref, 'bad_request')
        return runTask(socket, op)
      case 'ping':
        return pong(socket, op.ref)
      default:
        fail(socket, op.ref, 'bad_request')
    }
  })
  socket.once('close', () => {
    for (const name of joined) leave(socket, name)
    joined.clear()
  })
}
