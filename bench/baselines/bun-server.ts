import { listenAddress } from './listen.js'
import type { Op } from './rooms.js'

/**
 * Baseline: protocol v1 rooms on Bun's built-in WebSocket server (uWebSockets), run by the Bun binary of
 * the npm package @oven/bun-linux-x64. A join subscribes the socket to the room's topic and a publish is
 * one `server.publish`, which writes the frame to every subscriber natively: the strongest room server a
 * JavaScript team can pick. Like the Node baselines: no validation beyond JSON.parse, no priorities,
 * queues, rate limits or tasks.
 */

/** The part of Bun's API used here; Bun's own types are not installed, as nothing else runs on Bun. */
interface BunSocket {
  data: { id: string }
  send (text: string): number
  subscribe (topic: string): void
  unsubscribe (topic: string): void
  isSubscribed (topic: string): boolean
}
interface BunServer {
  upgrade (request: Request, options: { data: { id: string } }): boolean
  publish (topic: string, text: string): number
}
declare const Bun: {
  serve (options: {
    port: number
    hostname: string
    fetch (request: Request, server: BunServer): Response | undefined
    websocket: {
      maxPayloadLength: number
      idleTimeout: number
      perMessageDeflate: boolean
      open (ws: BunSocket): void
      message (ws: BunSocket, message: string | Uint8Array): void
    }
  }): BunServer
}

const seqs = new Map<string, number>()
let nextId = 0

function reply (ws: BunSocket, ref: unknown, fields: string): void {
  if (ref !== undefined) ws.send(`{"op":"reply","ref":${JSON.stringify(ref)},"ok":true${fields}}`)
}

function fail (ws: BunSocket, ref: unknown, code: string): void {
  const refPart = ref === undefined ? '' : `"ref":${JSON.stringify(ref)},`
  ws.send(`{"op":"error",${refPart}"code":"${code}","message":"${code}"}`)
}

const { port, host } = listenAddress()
const server = Bun.serve({
  port,
  hostname: host,
  fetch (request, bun) {
    if (bun.upgrade(request, { data: { id: `b${(++nextId).toString(36)}` } })) return undefined
    return new Response('WebSocket only', { status: 426 })
  },
  websocket: {
    maxPayloadLength: 64 * 1024,
    // The longest Bun allows; the harness's idle connections send nothing for many seconds.
    idleTimeout: 960,
    perMessageDeflate: false,
    open (ws) {
      ws.send(`{"op":"welcome","client":"${ws.data.id}","version":1,"heartbeatMs":0,"maxPayload":65536}`)
    },
    message (ws, raw) {
      let op: Op
      try {
        op = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw)) as Op
      } catch {
        return fail(ws, undefined, 'bad_request')
      }
      if (typeof raw !== 'string' || typeof op !== 'object' || op === null) return fail(ws, undefined, 'bad_request')
      const room = op.room
      switch (op.op) {
        case 'join':
          if (typeof room !== 'string') return fail(ws, op.ref, 'bad_request')
          ws.subscribe(room)
          return reply(ws, op.ref, `,"room":${JSON.stringify(room)},"seq":${seqs.get(room) ?? 0}`)
        case 'leave':
          if (typeof room !== 'string') return fail(ws, op.ref, 'bad_request')
          ws.unsubscribe(room)
          return reply(ws, op.ref, '')
        case 'publish': {
          if (typeof room !== 'string' || !ws.isSubscribed(room)) return fail(ws, op.ref, 'not_member')
          const seq = (seqs.get(room) ?? 0) + 1
          seqs.set(room, seq)
          const priority = JSON.stringify(op.priority ?? 'normal')
          server.publish(room, `{"op":"message","room":${JSON.stringify(room)},"seq":${seq},"data":${JSON.stringify(op.data) ?? 'null'},"priority":${priority},"ts":${Date.now()},"from":"${ws.data.id}"}`)
          return reply(ws, op.ref, `,"seq":${seq}`)
        }
        case 'ping':
          ws.send(op.ref === undefined ? '{"op":"pong"}' : `{"op":"pong","ref":${JSON.stringify(op.ref)}}`)
          return
        default:
          fail(ws, op.ref, 'bad_request')
      }
    }
  }
})
