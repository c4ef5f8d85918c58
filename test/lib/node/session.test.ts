import t from 'tap'
import type { WebSocket } from 'ws'
import { RoomPolicy } from '../../../lib/auth/permissions.js'
import { loadConfig } from '../../../lib/config.js'
import { createMemoryEngine } from '../../../lib/engine/memory/index.js'
import { Hub } from '../../../lib/node/hub.js'
import { OutboxRegistry } from '../../../lib/delivery/outbox.js'
import { ConnectionEvents } from '../../../lib/node/connection-events.js'
import { ConnectionLimits } from '../../../lib/node/connection-limits.js'
import { ClientSession, type SessionContext } from '../../../lib/node/session.js'
import type { WorkerPool } from '../../../lib/tasks/types.js'
import { FakeWebSocket, RawSocket } from '../../helpers/fake-websocket.js'

t.test('what a read chunk produced is written when the chunk has been parsed, not in a later microtask', async t => {
  const raw = new RawSocket()
  const socket = new FakeWebSocket(raw)
  const context: SessionContext = {
    hub: new Hub(createMemoryEngine({ size: 16, ttlMs: 60_000, maxBytes: 1 << 20, idempotencyTtlMs: 60_000 }), { recoveryMax: 100 }),
    outboxes: new OutboxRegistry({ maxMessages: 1000, maxBytes: 1 << 20, writeBatch: 1000, writeHighWater: 1 << 20 }),
    workerPool: { cancelOwner () {} } as unknown as WorkerPool,
    settings: loadConfig({}),
    events: new ConnectionEvents({ info () {}, warn () {} }),
    tokens: undefined,
    policy: RoomPolicy.open(),
    limits: new ConnectionLimits({ maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 }),
    isDraining: () => false
  }
  new ClientSession(socket as unknown as WebSocket, context)
  await Promise.resolve()
  t.match(raw.messages(), [{ op: 'welcome' }], 'the welcome goes out through the outbox, in a microtask')
  raw.writes.length = 0
  // ws registers its own 'data' listener first and emits 'message' from it; the session's runs after.
  const chunk = Buffer.from('{"op":"ping","ref":1}{"op":"ping","ref":2}')
  socket.emit('message', chunk.subarray(0, 21), false)
  socket.emit('message', chunk.subarray(21), false)
  t.same(raw.writes, [], 'handling a frame queues its answer')
  raw.read(chunk)
  t.same(raw.batches, [2], 'both answers written at once, in one write')
  t.same(raw.messages(), [{ op: 'pong', ref: 1 }, { op: 'pong', ref: 2 }])
  await Promise.resolve()
  t.same(raw.batches, [2], 'the microtask finds nothing left to write')
})
