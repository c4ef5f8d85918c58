import { setImmediate as nextTurn } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { OutgoingFrame } from '../../../lib/delivery/frame.js'
import { createMemoryEngine } from '../../../lib/engine/memory/index.js'
import type { StreamPosition } from '../../../lib/engine/types.js'
import { Hub, type Connection, type JoinResult } from '../../../lib/node/hub.js'
import { Priority } from '../../../lib/protocol/priority.js'
import { decodeFrame } from '../../helpers/fake-sink.js'

class RecordingConnection implements Connection {
  readonly frames: OutgoingFrame[] = []
  /** The frames that came through deliverLive, which a quiet server may write at once. */
  readonly live = new Set<OutgoingFrame>()
  constructor (readonly id: string) {}
  deliver (frame: OutgoingFrame): void { this.frames.push(frame) }
  deliverLive (frame: OutgoingFrame): void {
    this.frames.push(frame)
    this.live.add(frame)
  }
  async close (): Promise<void> {}
  terminate (): void {}
  heartbeat (): void {}
  messages (): Record<string, unknown>[] { return this.frames.map(f => decodeFrame(f.bytes) as Record<string, unknown>) }
}

function newHub (t: Test, history = 256): Hub {
  const engine = createMemoryEngine({ size: history, ttlMs: 60_000, maxBytes: 1 << 26, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  return new Hub(engine, { recoveryMax: 1000 })
}

function join (hub: Hub, connection: Connection, room: string, options: Partial<Parameters<Hub['join']>[2]> = {}): JoinResult {
  hub.connect(connection)
  const result = hub.join(connection, room, { watch: false, ...options }) as JoinResult
  hub.finishJoin(connection, room, result)
  return result
}

t.test('publish fans out one shared frame per message, with per-room seqs', async t => {
  const hub = newHub(t)
  const members = [new RecordingConnection('a'), new RecordingConnection('b'), new RecordingConnection('c')]
  for (const m of members) join(hub, m, 'room-1')
  join(hub, members[0]!, 'room-2')
  const first = hub.publish('room-1', { hello: 1 }, { priority: Priority.high, from: 'a' })
  t.match(first, { seq: 1, recipients: 3, duplicate: false })
  t.match(hub.publish('room-1', 'two', { priority: Priority.normal }), { seq: 2, recipients: 3 })
  t.match(hub.publish('room-2', null, { priority: Priority.low }), { seq: 1, recipients: 1 }, 'seqs are per room')
  t.equal(members[1]!.frames[0], members[2]!.frames[0], 'recipients share the frame object')
  const [message, second] = members[1]!.messages()
  t.match(message, { op: 'message', room: 'room-1', seq: 1, data: { hello: 1 }, priority: 'high', from: 'a' })
  t.notOk('from' in second!, 'server-side publishes carry no from')
  t.match(members[1]!.frames[0], { room: 'room-1', seq: 1 }, 'the frame knows its stream position, for gap reports')
  t.same(hub.stats(), { connections: 3, rooms: 2, memberships: 4 })
})

t.test('a room without members still takes a seq, and its stream survives the last member leaving', async t => {
  const hub = newHub(t)
  t.match(hub.publish('quiet', 1, { priority: Priority.normal }), { seq: 1, recipients: 0 })
  const a = new RecordingConnection('a')
  const joined = join(hub, a, 'quiet')
  t.equal(joined.position.seq, 1)
  hub.leave(a, 'quiet')
  t.same(hub.listRooms(), [], 'no local members left')
  const again = join(hub, a, 'quiet')
  t.same(again.position, joined.position, 'same seq and epoch after the room emptied')
})

t.test('a recovering join gets the replay first, then what was published during the join, each seq once', async t => {
  const hub = newHub(t)
  const reader = new RecordingConnection('r')
  const start = join(hub, reader, 'feed')
  for (let i = 1; i <= 5; i++) hub.publish('feed', i, { priority: Priority.normal })
  hub.leave(reader, 'feed')
  for (let i = 6; i <= 8; i++) hub.publish('feed', i, { priority: Priority.normal })
  reader.frames.length = 0
  const result = hub.join(reader, 'feed', { watch: false, since: { seq: 5, epoch: start.position.epoch } }) as JoinResult
  t.match(result.recovery, { recovered: true })
  // A publish that lands after the history was read but before the join was answered.
  hub.publish('feed', 9, { priority: Priority.normal })
  t.same(reader.frames, [], 'live frames wait while the join is served')
  hub.finishJoin(reader, 'feed', result)
  t.same(reader.messages().map(m => m.seq), [6, 7, 8, 9])
  hub.publish('feed', 10, { priority: Priority.normal })
  t.same(reader.messages().map(m => m.seq), [6, 7, 8, 9, 10], 'then live')
  t.same(reader.frames.map(frame => reader.live.has(frame)), [false, false, false, false, true],
    'only the live message may be written at once: the replay and what waited for it keep their order behind the join reply')
})

t.test('live messages and broadcasts go through deliverLive; an epoch notice is queued in front of the message', async t => {
  let now = 1_000
  const engine = createMemoryEngine({ size: 10, ttlMs: 1_000, maxBytes: 1 << 26, idempotencyTtlMs: 60_000, clock: () => now })
  t.teardown(() => engine.close())
  const hub = new Hub(engine, { recoveryMax: 1000 })
  const member = new RecordingConnection('m')
  join(hub, member, 'room')
  hub.publish('room', 1, { priority: Priority.normal })
  hub.broadcast('all', Priority.normal)
  now += 2_000
  hub.publish('room', 2, { priority: Priority.normal })
  t.same(member.messages().map(m => m.op), ['message', 'broadcast', 'epoch', 'message'])
  t.same(member.frames.map(frame => member.live.has(frame)), [true, true, false, true])
})

t.test('presence events go to watchers once per turn, not to the member they are about', async t => {
  const hub = newHub(t)
  const watcher = new RecordingConnection('w')
  join(hub, watcher, 'lobby', { watch: true })
  const other = new RecordingConnection('o')
  join(hub, other, 'lobby')
  t.same(watcher.frames, [], 'not inside the join')
  await nextTurn()
  t.same(watcher.messages(), [{ op: 'joined', room: 'lobby', client: 'o' }])
  hub.leave(other, 'lobby')
  await nextTurn()
  t.same(watcher.messages().at(-1), { op: 'left', room: 'lobby', client: 'o' })
  t.same(other.frames, [], 'a member that did not ask gets none')
  t.match(await hub.presence('lobby', 10), { total: 1, members: [{ client: 'w' }] })
})

t.test('broadcast reaches every connection, in rooms or not', async t => {
  const hub = newHub(t)
  const a = new RecordingConnection('a')
  const b = new RecordingConnection('b')
  hub.connect(a)
  join(hub, b, 'r')
  t.equal(hub.broadcast({ alert: true }, Priority.critical), 2)
  t.match(a.messages()[0], { op: 'broadcast', data: { alert: true }, priority: 'critical' })
  t.equal(Array.from(hub.connections()).length, 2)
})

t.test('a join asks a networked engine for presence and the position at once, and fails whole if either fails', async t => {
  const engine = createMemoryEngine({ size: 16, ttlMs: 60_000, maxBytes: 1 << 20, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const asked: string[] = []
  const answers: { resolve: () => void, reject: (error: Error) => void }[] = []
  const later = <T>(name: string, value: () => T | PromiseLike<T>): Promise<T> => {
    asked.push(name)
    return new Promise<T>((resolve, reject) => { answers.push({ resolve: () => resolve(value()), reject }) })
  }
  const { presence, history } = engine
  const memoryJoin = presence.join.bind(presence)
  const memoryPosition = history.position.bind(history)
  presence.join = (room, member) => later<void>('presence', () => memoryJoin(room, member))
  history.position = room => later<StreamPosition>('position', () => memoryPosition(room))
  const hub = new Hub(engine, { recoveryMax: 1000 })

  const a = new RecordingConnection('a')
  hub.connect(a)
  const joined = hub.join(a, 'lobby', { watch: false }) as Promise<JoinResult>
  t.same(asked, ['presence', 'position'], 'the second is asked before the first is answered')
  for (const answer of answers.splice(0)) answer.resolve()
  t.match(await joined, { position: { seq: 0 } })

  const b = new RecordingConnection('b')
  hub.connect(b)
  const failed = hub.join(b, 'lobby', { watch: false }) as Promise<JoinResult>
  const [presenceAnswer, positionAnswer] = answers.splice(0)
  presenceAnswer!.reject(new Error('presence store down'))
  positionAnswer!.resolve()
  await t.rejects(failed, /presence store down/)
})

t.test('a node watches a room\'s presence events while it has a watcher there, and only then', async t => {
  const engine = createMemoryEngine({ size: 16, ttlMs: 60_000, maxBytes: 1 << 20, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const calls: string[] = []
  const { broker } = engine
  const watch = broker.watch.bind(broker)
  const unwatch = broker.unwatch.bind(broker)
  broker.watch = room => { calls.push(`watch ${room}`); return watch(room) }
  broker.unwatch = room => { calls.push(`unwatch ${room}`); return unwatch(room) }
  const hub = new Hub(engine, { recoveryMax: 1000 })
  const [a, b, c] = [new RecordingConnection('a'), new RecordingConnection('b'), new RecordingConnection('c')]
  join(hub, a, 'lobby')
  t.same(calls, [], 'a member that does not watch asks for nothing')
  join(hub, b, 'lobby', { watch: true })
  join(hub, c, 'lobby', { watch: true })
  t.same(calls, ['watch lobby'], 'once for the first watcher')
  hub.leave(b, 'lobby')
  t.same(calls, ['watch lobby'], 'still one watcher')
  join(hub, c, 'lobby', { watch: false })
  t.same(calls, ['watch lobby', 'unwatch lobby'], 'the last watcher stopped watching')
  join(hub, c, 'lobby', { watch: true })
  hub.leave(c, 'lobby')
  hub.leave(a, 'lobby')
  t.same(calls, ['watch lobby', 'unwatch lobby', 'watch lobby', 'unwatch lobby'], 'and when the last watcher left')
})
