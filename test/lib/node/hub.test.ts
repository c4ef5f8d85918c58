import t from 'tap'
import { Hub, type Member } from '../../../lib/node/hub.js'
import type { OutgoingFrame } from '../../../lib/delivery/frame.js'
import { Priority } from '../../../lib/protocol/priority.js'
import { decodeFrame } from '../../helpers/fake-sink.js'

class RecordingMember implements Member {
  readonly frames: OutgoingFrame[] = []
  closedWith: number | undefined
  constructor (readonly id: string) {}
  deliver (frame: OutgoingFrame): void { this.frames.push(frame) }
  async close (code: number): Promise<void> { this.closedWith = code }
  terminate (): void { this.closedWith = 1006 }
  heartbeat (): void {}
  messages (): Record<string, unknown>[] { return this.frames.map(f => decodeFrame(f.bytes) as Record<string, unknown>) }
}

t.test('rooms are created by the first join and removed with the last leave', async t => {
  const hub = new Hub()
  const a = new RecordingMember('a')
  const b = new RecordingMember('b')
  hub.connect(a)
  hub.connect(b)
  t.equal(hub.join(a, 'lobby'), 0)
  t.equal(hub.join(b, 'lobby'), 0)
  t.equal(hub.join(b, 'lobby'), 0, 'joining twice is harmless')
  t.same(hub.stats(), { connections: 2, rooms: 1, memberships: 2 })
  t.ok(hub.leave(a, 'lobby'))
  t.notOk(hub.leave(a, 'lobby'), 'leaving twice reports false')
  t.same(hub.listRooms(), [{ room: 'lobby', members: 1 }])
  hub.disconnect(b, ['lobby'])
  t.same(hub.stats(), { connections: 1, rooms: 0, memberships: 0 })
})

t.test('publish fans out one shared frame with per-room sequence numbers', async t => {
  const hub = new Hub()
  const members = [new RecordingMember('a'), new RecordingMember('b'), new RecordingMember('c')]
  for (const m of members) { hub.connect(m); hub.join(m, 'room-1') }
  hub.join(members[0]!, 'room-2')
  t.same(hub.publish('room-1', { hello: 1 }, { priority: Priority.high, from: 'a' }), { seq: 1, recipients: 3 })
  t.same(hub.publish('room-1', 'two', { priority: Priority.normal }), { seq: 2, recipients: 3 })
  t.same(hub.publish('room-2', null, { priority: Priority.low }), { seq: 1, recipients: 1 }, 'sequences are per room')
  t.equal(members[1]!.frames[0], members[2]!.frames[0], 'recipients share the frame object')
  const [first, second] = members[1]!.messages()
  t.match(first, { op: 'message', room: 'room-1', seq: 1, data: { hello: 1 }, priority: 'high', from: 'a' })
  t.type(first!.ts, 'number')
  t.notOk('from' in second!, 'server-side publishes carry no from')
  t.equal(hub.join(members[1]!, 'room-1'), 2, 'join reports the latest seq')
})

t.test('publish to a room without members reaches nobody and takes no seq', async t => {
  const hub = new Hub()
  t.same(hub.publish('empty', 1, { priority: Priority.normal }), { seq: 0, recipients: 0 })
})

t.test('publish carries ttl and a room-scoped conflation key', async t => {
  const hub = new Hub()
  const a = new RecordingMember('a')
  hub.join(a, 'r')
  hub.publish('r', 1, { priority: Priority.normal, ttlMs: 500, key: 'cursor' })
  const frame = a.frames[0]!
  t.ok(frame.expiresAt > frame.createdAt)
  t.equal(frame.conflationKey, 'r\u0000cursor')
})

t.test('broadcast reaches every connection, in rooms or not', async t => {
  const hub = new Hub()
  const a = new RecordingMember('a')
  const b = new RecordingMember('b')
  hub.connect(a)
  hub.connect(b)
  hub.join(a, 'r')
  t.equal(hub.broadcast({ alert: true }, Priority.critical), 2)
  t.match(b.messages()[0], { op: 'broadcast', data: { alert: true }, priority: 'critical' })
  t.equal(Array.from(hub.members()).length, 2)
})

t.test('traffic counters count protocol errors by code', async t => {
  const hub = new Hub()
  hub.traffic.protocolError('bad_request')
  hub.traffic.protocolError('bad_request')
  hub.traffic.protocolError('rate_limited')
  t.same(Object.fromEntries(hub.traffic.protocolErrors), { bad_request: 2, rate_limited: 1 })
})
