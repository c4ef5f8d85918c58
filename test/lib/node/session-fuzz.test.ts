import fc from 'fast-check'
import t from 'tap'
import type { WebSocket } from 'ws'
import { RoomPolicy } from '../../../lib/auth/permissions.js'
import { loadConfig } from '../../../lib/config.js'
import { OutboxRegistry } from '../../../lib/delivery/outbox.js'
import { createMemoryEngine } from '../../../lib/engine/memory/index.js'
import { ConnectionEvents } from '../../../lib/node/connection-events.js'
import { ConnectionLimits } from '../../../lib/node/connection-limits.js'
import { Hub } from '../../../lib/node/hub.js'
import { ClientSession, type SessionContext } from '../../../lib/node/session.js'
import type { WorkerPool } from '../../../lib/tasks/types.js'
import { FakeWebSocket, RawSocket } from '../../helpers/fake-websocket.js'

/** How many frames to generate: a few thousand in CI, `npm run fuzz` asks for 100k. */
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 3000)
const OPS = ['join', 'leave', 'publish', 'broadcast', 'history', 'presence', 'refresh', 'task', 'ping', 'nope', '__proto__', 'constructor']

function context (): SessionContext {
  const settings = { ...loadConfig({}), rateLimitPerSec: 1e6, rateLimitBurst: 1e6, allowClientBroadcast: true }
  return {
    hub: new Hub(createMemoryEngine({ size: 64, ttlMs: 60_000, maxBytes: 1 << 24, idempotencyTtlMs: 60_000 }), { recoveryMax: 100 }),
    outboxes: new OutboxRegistry({ maxMessages: 1e6, maxBytes: 1 << 30, writeBatch: 1e6, writeHighWater: 1 << 30 }),
    // Tasks answer at once: what is fuzzed is the session, not the pool.
    workerPool: { submit: async (request: { data: unknown }) => request.data, cancelOwner () {} } as unknown as WorkerPool,
    settings,
    events: new ConnectionEvents({ info () {}, warn () {} }),
    tokens: undefined,
    policy: RoomPolicy.open(),
    limits: new ConnectionLimits({ maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 }),
    isDraining: () => false
  }
}

const room = fc.oneof(fc.constantFrom('r', 'lobby', 'a:b', 'victim'), fc.string({ maxLength: 140 }))
const anything = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constant(undefined), fc.constantFrom(1e308, -0, 2 ** 53 + 1, '__proto__', { __proto__: { polluted: true } }))
/** An object frame: one of the ops (or not), fields of the right names with any values. */
const opFrame = fc.record({
  op: fc.oneof(fc.constantFrom(...OPS), anything),
  room,
  data: anything,
  priority: fc.oneof(fc.constantFrom('critical', 'low', 0, 3, 4, 'urgent'), anything),
  since: fc.oneof(fc.record({ seq: fc.oneof(fc.nat(), anything), epoch: fc.oneof(fc.string(), anything) }), anything),
  limit: fc.oneof(fc.integer({ min: -5, max: 2000 }), anything),
  reverse: anything,
  cursor: anything,
  presence: anything,
  info: anything,
  token: anything,
  name: fc.oneof(fc.constantFrom('echo', 'sha256'), anything),
  id: anything,
  key: anything,
  ttlMs: anything
}, { requiredKeys: ['op'] })

type Frame = { text: string, ref: number | undefined } | { binary: Buffer }

/** Frames with a unique numeric ref (which must be answered exactly once) and frames without one. */
function frames (count: number): Frame[] {
  let nextRef = 0
  const withRef = opFrame.map(frame => {
    const ref = ++nextRef
    return { text: JSON.stringify({ ...frame, ref }), ref }
  })
  const raw = fc.oneof(
    fc.string({ maxLength: 200 }).map(text => ({ text, ref: undefined })),
    fc.json({ maxDepth: 3 }).map(text => ({ text, ref: undefined })),
    fc.constantFrom('join:', 'join:r', 'leave:r', 'msg:', 'msg:hi', 'task:x', '{', '{"op":', '[]', 'null', '{"op":"ping","ref":{}}', '{"__proto__":{"op":"ping"}}', '{"constructor":{"prototype":{"x":1}},"op":"ping"}', `${'['.repeat(5000)}${']'.repeat(5000)}`, `{"a":${'['.repeat(3000)}${']'.repeat(3000)}}`).map(text => ({ text, ref: undefined })),
    fc.uint8Array({ maxLength: 64 }).map(bytes => ({ binary: Buffer.from(bytes) }))
  )
  return fc.sample(fc.oneof({ arbitrary: withRef, weight: 4 }, { arbitrary: raw, weight: 1 }), count) as Frame[]
}

t.test(`fuzzing the session with ${FRAMES} frames: it never throws, every ref is answered once, it stays usable, others are untouched`, async t => {
  const shared = context()
  const victimRaw = new RawSocket()
  const victim = new FakeWebSocket(victimRaw)
  new ClientSession(victim as unknown as WebSocket, shared)
  victim.emit('message', Buffer.from('{"op":"join","room":"guarded","ref":1}'), false)
  const raw = new RawSocket()
  const socket = new FakeWebSocket(raw)
  new ClientSession(socket as unknown as WebSocket, shared)
  const generated = frames(FRAMES)
  const expected = new Set<number>()
  for (const frame of generated) {
    if ('binary' in frame) {
      socket.emit('message', frame.binary, true)
    } else {
      socket.emit('message', Buffer.from(frame.text), false)
      if (frame.ref !== undefined) expected.add(frame.ref)
    }
    // Every few frames the pump writes, as the event loop would between reads.
    if (expected.size % 64 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  socket.emit('message', Buffer.from('{"op":"ping","ref":"last"}'), false)
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
  raw.release()
  await new Promise(resolve => setImmediate(resolve))

  const answers = new Map<unknown, number>()
  for (const message of raw.messages() as Record<string, unknown>[]) {
    if (message.ref !== undefined && (message.op === 'reply' || message.op === 'error' || message.op === 'pong')) {
      answers.set(message.ref, (answers.get(message.ref) ?? 0) + 1)
    }
  }
  const missing = [...expected].filter(ref => !answers.has(ref))
  const twice = [...answers].filter(([, count]) => count > 1).map(([ref]) => ref)
  t.same(missing.slice(0, 5), [], `every frame with a ref was answered (${expected.size} refs)`)
  t.same(twice.slice(0, 5), [], 'and none twice')
  t.equal(answers.get('last'), 1, 'the connection is still usable after everything')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
  t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'op'), false)
  t.ok(shared.hub.stats().connections === 2, 'both connections are still there')
  const victimMessages = victimRaw.messages() as Record<string, unknown>[]
  t.notOk(victimMessages.some(m => m.op === 'message' && m.room === 'guarded'), 'nothing reached a room the fuzzed connection never joined')
})
