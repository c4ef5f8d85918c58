import t, { type Test } from 'tap'
import { Switchboard, SwitchboardError, type WebSocketLike } from '../../../lib/client/index.js'

type Listener = (event: { data?: unknown, code?: number, reason?: string }) => void

/** A socket whose server side the test plays: it sees what the client sent and answers by hand. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = []
  readyState = 0
  readonly sent: Record<string, unknown>[] = []
  private readonly listeners = new Map<string, Listener[]>()
  constructor (readonly url: string) { FakeSocket.all.push(this) }
  addEventListener (type: string, listener: Listener): void { this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]) }
  send (data: string): void { this.sent.push(JSON.parse(data) as Record<string, unknown>) }
  close (code = 1000, reason = ''): void { this.serverClose(code, reason) }
  serverSend (frame: Record<string, unknown>): void { for (const l of this.listeners.get('message') ?? []) l({ data: JSON.stringify(frame) }) }
  serverClose (code: number, reason = ''): void {
    if (this.readyState === 3) return
    this.readyState = 3
    for (const l of this.listeners.get('close') ?? []) l({ code, reason })
  }
  welcome (): void { this.readyState = 1; this.serverSend({ op: 'welcome', client: 'c1', version: 1, heartbeatMs: 60_000, maxPayload: 65536 }) }
  /** The last op the client sent of this kind. */
  last (op: string): Record<string, unknown> { return [...this.sent].reverse().find(f => f.op === op) as Record<string, unknown> }
  reply (op: string, fields: Record<string, unknown>): void { this.serverSend({ op: 'reply', ref: this.last(op).ref, ok: true, ...fields }) }
}

const tick = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 0))

function client (t: Test, options = {}): Switchboard {
  FakeSocket.all = []
  const sb = new Switchboard('ws://test/ws', { WebSocket: FakeSocket, minReconnectDelay: 1, maxReconnectDelay: 5, timeout: 200, ...options })
  t.teardown(() => sb.disconnect())
  return sb
}

t.test('connects, answers requests by ref, and turns error frames into typed errors', async t => {
  const sb = client(t, { token: 'abc' })
  const states: string[] = []
  sb.on('state', s => states.push(s))
  sb.connect()
  await tick()
  const socket = FakeSocket.all[0]!
  t.equal(socket.url, 'ws://test/ws?token=abc')
  socket.welcome()
  await sb.ready()
  t.same(states, ['connecting', 'connected'])
  const pong = sb.request({ op: 'ping' })
  socket.serverSend({ op: 'pong', ref: socket.last('ping').ref })
  t.match(await pong, { op: 'pong' })
  const task = sb.task('nope', 1)
  socket.serverSend({ op: 'error', ref: socket.last('task').ref, code: 'unknown_task', message: 'unknown task nope' })
  await t.rejects(task, new SwitchboardError('unknown_task', 'unknown task nope'))
  await t.rejects(sb.request({ op: 'ping' }), { code: 'timeout' }, 'no answer within the timeout')
})

t.test('reconnects with backoff, at once after 4008, never after 1008', async t => {
  const sb = client(t)
  const disconnects: number[] = []
  sb.on('disconnected', d => disconnects.push(d.code))
  sb.connect()
  await tick()
  FakeSocket.all[0]!.welcome()
  FakeSocket.all[0]!.serverClose(4008, 'slow consumer')
  await tick()
  t.equal(FakeSocket.all.length, 2, 'a slow consumer reconnects at once')
  FakeSocket.all[1]!.serverClose(1006)
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(FakeSocket.all.length, 3, 'an abnormal close reconnects after a backoff')
  FakeSocket.all[2]!.welcome()
  FakeSocket.all[2]!.serverClose(1008, 'rate limit exceeded')
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(FakeSocket.all.length, 3, 'abuse is not retried')
  t.equal(sb.state, 'disconnected')
  t.same(disconnects, [4008, 1008])
})

t.test('a room rejoins with since after a reconnect and delivers each seq once', async t => {
  const sb = client(t)
  sb.connect()
  await tick()
  let socket = FakeSocket.all[0]!
  socket.welcome()
  const room = sb.room<number>('feed')
  const seqs: number[] = []
  const events: string[] = []
  room.on('message', m => seqs.push(m.seq))
  room.on('recovered', r => events.push(`recovered ${r.replayedFrom}-${r.top}`))
  room.on('reset', r => events.push(`reset ${r.reason}`))
  await tick()
  t.same(socket.last('join'), { op: 'join', room: 'feed', ref: socket.last('join').ref }, 'the first join has no since')
  socket.reply('join', { room: 'feed', seq: 4, epoch: 'E1' })
  await tick()
  for (const seq of [5, 6, 8]) socket.serverSend({ op: 'message', room: 'feed', seq, data: seq, priority: 'normal', ts: 1 })
  socket.serverClose(1006)
  await new Promise(resolve => setTimeout(resolve, 20))
  socket = FakeSocket.all[1]!
  socket.welcome()
  await tick()
  t.match(socket.last('join'), { room: 'feed', since: { seq: 6, epoch: 'E1' } }, 'since the last contiguous seq')
  socket.reply('join', { room: 'feed', seq: 9, epoch: 'E1', recovered: true })
  await tick()
  for (const seq of [7, 8, 9]) socket.serverSend({ op: 'message', room: 'feed', seq, data: seq, priority: 'normal', ts: 1 })
  t.same(seqs, [5, 6, 8, 7, 9], '8 was not delivered twice')
  t.same(events, ['recovered 7-9'])
  socket.serverClose(1006)
  await new Promise(resolve => setTimeout(resolve, 20))
  socket = FakeSocket.all[2]!
  socket.welcome()
  await tick()
  socket.reply('join', { room: 'feed', seq: 0, epoch: 'E2', recovered: false, reason: 'epoch_changed' })
  await tick()
  t.same(events, ['recovered 7-9', 'reset epoch_changed'])
  socket.serverSend({ op: 'message', room: 'feed', seq: 1, data: 1, priority: 'normal', ts: 1 })
  t.same(seqs.at(-1), 1, 'a new epoch counts from 1 again')
})

t.test('gaps are filled from history when asked, superseded ones are not', async t => {
  const sb = client(t)
  sb.connect()
  await tick()
  const socket = FakeSocket.all[0]!
  socket.welcome()
  const room = sb.room<string>('g', { fillGaps: true })
  const got: number[] = []
  const gaps: unknown[] = []
  room.on('message', m => got.push(m.seq))
  room.on('gap', g => gaps.push(g))
  await tick()
  socket.reply('join', { room: 'g', seq: 0, epoch: 'E' })
  await tick()
  socket.serverSend({ op: 'message', room: 'g', seq: 1, data: 'a', priority: 'normal', ts: 1 })
  socket.serverSend({ op: 'gap', room: 'g', ranges: [[2, 3]], reason: 'queue_full' })
  await tick()
  t.match(socket.last('history'), { room: 'g', since: 1, limit: 2 })
  socket.reply('history', { room: 'g', seq: 3, epoch: 'E', messages: [{ seq: 2, data: 'b', priority: 'low', ts: 2 }, { seq: 3, data: 'c', priority: 'low', ts: 3 }] })
  await tick()
  socket.serverSend({ op: 'gap', room: 'g', ranges: [[4, 4]], reason: 'superseded' })
  await tick()
  t.same(got, [1, 2, 3])
  t.same(gaps, [{ ranges: [[2, 3]], reason: 'queue_full', filled: [2, 3] }, { ranges: [[4, 4]], reason: 'superseded', filled: [] }])
  t.equal(socket.sent.filter(f => f.op === 'history').length, 1, 'a superseded gap needs no history')
})

t.test('a publish cut off by a reconnect is sent again with the same id', async t => {
  const sb = client(t)
  sb.connect()
  await tick()
  FakeSocket.all[0]!.welcome()
  const room = sb.room('p')
  await tick()
  FakeSocket.all[0]!.reply('join', { room: 'p', seq: 0, epoch: 'E' })
  const published = room.publish('hello')
  await tick()
  const first = FakeSocket.all[0]!.last('publish')
  t.type(first.id, 'string', 'an id is generated')
  FakeSocket.all[0]!.serverClose(1006)
  await new Promise(resolve => setTimeout(resolve, 20))
  FakeSocket.all[1]!.welcome()
  await tick()
  const again = FakeSocket.all[1]!.last('publish')
  t.equal(again.id, first.id, 'the retry carries the same id')
  FakeSocket.all[1]!.reply('publish', { seq: 1, duplicate: true })
  t.same(await published, { seq: 1 })
})

t.test('a join refused for the moment is tried again with backoff; a refusal that would repeat is not', async t => {
  const sb = client(t)
  const errors: string[] = []
  sb.on('error', error => errors.push((error as SwitchboardError).code))
  sb.connect()
  await tick()
  const socket = FakeSocket.all[0]!
  socket.welcome()
  const joins = (room: string): Record<string, unknown>[] => socket.sent.filter(f => f.op === 'join' && f.room === room)
  const until = async (done: () => boolean): Promise<void> => {
    const deadline = Date.now() + 2000
    while (!done()) {
      if (Date.now() > deadline) throw new Error('the join was not tried again')
      await tick()
    }
  }
  const feed = sb.room<number>('feed')
  const seqs: number[] = []
  feed.on('message', m => seqs.push(m.seq))
  await tick()
  socket.serverSend({ op: 'error', ref: socket.last('join').ref, code: 'unavailable', message: 'redis: no answer within 5000 ms' })
  await until(() => joins('feed').length === 2)
  t.same(errors, ['unavailable'], 'each refusal is reported')
  socket.serverSend({ op: 'error', ref: socket.last('join').ref, code: 'timeout', message: 'timeout' })
  await until(() => joins('feed').length === 3)
  socket.reply('join', { room: 'feed', seq: 2, epoch: 'E1' })
  await tick()
  socket.serverSend({ op: 'message', room: 'feed', seq: 3, data: 3, priority: 'normal', ts: 1 })
  t.same(seqs, [3], 'joined at last')

  sb.room('secret')
  await tick()
  socket.serverSend({ op: 'error', ref: socket.last('join').ref, code: 'forbidden', message: 'no join capability on secret' })
  // Five times the longest backoff of this client.
  await new Promise(resolve => setTimeout(resolve, 25))
  t.equal(joins('secret').length, 1, 'forbidden is not tried again')

  const later = sb.room('later')
  await tick()
  socket.serverSend({ op: 'error', ref: socket.last('join').ref, code: 'unavailable', message: 'unavailable' })
  await tick()
  const left = later.leave()
  socket.reply('leave', {})
  await left
  await new Promise(resolve => setTimeout(resolve, 25))
  t.equal(joins('later').length, 1, 'a room left meanwhile is not joined again')
  t.same(errors, ['unavailable', 'timeout', 'forbidden', 'unavailable'])
})
