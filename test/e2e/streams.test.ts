import type { Socket } from 'node:net'
import t from 'tap'
import { TestClient, listenApp } from '../helpers/app.js'

type Message = Record<string, unknown> & { op: string }

function rawSocket (client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket
}

/** Records the seq of every message frame of a room as it arrives, beside TestClient's own queue. */
function recordSeqs (client: TestClient, room: string, seqs: number[], onMessage: () => void = () => {}): void {
  client.ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as Message
    if (frame.op === 'message' && frame.room === room) {
      seqs.push(frame.seq as number)
      onMessage()
    }
  })
}

const fast = { rateLimitPerSec: 1_000_000, rateLimitBurst: 1_000_000 }

t.test('a reader cut off mid-stream reconnects with since and ends with every seq exactly once', async t => {
  const total = 5000
  const { url } = await listenApp(t, { ...fast, historySize: total, recoveryMax: total, sendQueueSize: 10_000 })
  const publisher = await TestClient.connect(`${url}/ws`)
  await publisher.request({ op: 'join', room: 'stream' })
  const reader = await TestClient.connect(`${url}/ws`)
  const joined = await reader.request({ op: 'join', room: 'stream' })
  const epoch = joined.epoch as string

  const beforeCut: number[] = []
  const cut = new Promise<void>(resolve => {
    recordSeqs(reader, 'stream', beforeCut, () => {
      if (beforeCut.length === 1000) {
        // Terminated, not closed: the server sees the connection die without a close frame.
        reader.ws.terminate()
        resolve()
      }
    })
  })
  for (let i = 1; i <= total; i++) publisher.send({ op: 'publish', room: 'stream', data: { i } })
  await cut
  const last = beforeCut[beforeCut.length - 1] as number

  const again = await TestClient.connect(`${url}/ws`)
  const afterCut: number[] = []
  const done = new Promise<void>(resolve => recordSeqs(again, 'stream', afterCut, () => { if (afterCut.includes(total)) resolve() }))
  const reply = await again.request({ op: 'join', room: 'stream', since: { seq: last, epoch } })
  t.match(reply, { ok: true, room: 'stream', epoch, recovered: true })
  await done
  const all = [...beforeCut, ...afterCut]
  t.equal(new Set(all).size, all.length, 'no seq twice, across replay and live')
  t.same([...all].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1), 'every seq from 1 to 5000')
  t.same(afterCut, [...afterCut].sort((a, b) => a - b), 'replay and live in seq order')
  publisher.close()
  again.close()
})

t.test('after a server restart a join with since gets recovered:false, reason epoch_changed', async t => {
  const first = await listenApp(t)
  const client = await TestClient.connect(`${first.url}/ws`)
  const joined = await client.request({ op: 'join', room: 'r' })
  await client.request({ op: 'publish', room: 'r', data: 1 })
  client.close()
  await first.app.close()
  const second = await listenApp(t)
  const back = await TestClient.connect(`${second.url}/ws`)
  const reply = await back.request({ op: 'join', room: 'r', since: { seq: 1, epoch: joined.epoch } })
  t.match(reply, { ok: true, seq: 0, recovered: false, reason: 'epoch_changed' })
  t.not(reply.epoch, joined.epoch)
  await back.request({ op: 'publish', room: 'r', data: 2 })
  t.match(await back.op('message'), { seq: 1, data: 2 }, 'joined from the current position, nothing replayed')
  back.close()
})

t.test('recovery says too_old when the missed messages left history, too_many over RECOVERY_MAX', async t => {
  const { app, url } = await listenApp(t, { historySize: 10, recoveryMax: 15 })
  const client = await TestClient.connect(`${url}/ws`)
  const { epoch } = await client.request({ op: 'join', room: 'r' })
  await client.request({ op: 'leave', room: 'r' })
  for (let i = 1; i <= 20; i++) await app.hub.publish('r', i, { priority: 2 })
  t.match(await client.request({ op: 'join', room: 'r', since: { seq: 5, epoch } }), { seq: 20, recovered: false, reason: 'too_old' })
  await client.request({ op: 'leave', room: 'r' })
  t.match(await client.request({ op: 'join', room: 'r', since: { seq: 12, epoch } }), { seq: 20, recovered: true })
  for (let seq = 13; seq <= 20; seq++) t.match(await client.op('message'), { seq, data: seq })
  await client.request({ op: 'leave', room: 'r' })
  for (let i = 21; i <= 40; i++) await app.hub.publish('r', i, { priority: 2 })
  t.match(await client.request({ op: 'join', room: 'r', since: { seq: 20, epoch } }), { seq: 40, recovered: false, reason: 'too_many' })
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /^ws_recoveries_total\{result="failed",reason="too_old"\} 1$/m)
  t.match(metrics, /^ws_recoveries_total\{result="failed",reason="too_many"\} 1$/m)
  t.match(metrics, /^ws_recoveries_total\{result="recovered",reason="none"\} 1$/m)
  client.close()
})

t.test('a stalled reader is told exactly which seqs the outbox dropped, and why', async t => {
  const { app, url } = await listenApp(t, { sendQueueSize: 40, writeHighWater: 1024 })
  const reader = await TestClient.connect(`${url}/ws`)
  await reader.request({ op: 'join', room: 'feed' })
  rawSocket(reader).pause()
  const pad = 'p'.repeat(300)
  let published = 0
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 20; i++) await app.hub.publish('feed', { pad }, { priority: i % 5 === 0 ? 1 : 2 })
    for (let i = 0; i < 2; i++) await app.hub.publish('feed', { pad, key: true }, { priority: 3, key: 'cursor' })
    published += 22
    await new Promise(resolve => setImmediate(resolve))
  }
  rawSocket(reader).resume()
  await app.outbox.whenAllEmpty()
  await reader.request({ op: 'ping' })
  const received: number[] = []
  const gaps = new Map<string, number[]>()
  for (const frame of reader.received) {
    if (frame.op === 'message') received.push(frame.seq as number)
    if (frame.op === 'gap') {
      t.equal(frame.room, 'feed')
      const seqs = gaps.get(frame.reason as string) ?? []
      for (const [from, to] of frame.ranges as [number, number][]) for (let seq = from; seq <= to; seq++) seqs.push(seq)
      gaps.set(frame.reason as string, seqs)
    }
  }
  const dropped = [...gaps.values()].flat()
  t.ok(dropped.length > 0, `${dropped.length} messages were shed`)
  t.equal(new Set([...received, ...dropped]).size, received.length + dropped.length, 'a seq is either delivered or reported, never both')
  t.same([...received, ...dropped].sort((a, b) => a - b), Array.from({ length: published }, (_, i) => i + 1), 'and every seq is one of the two')
  const stats = app.outbox.stats.dropped
  for (const reason of ['queue_full', 'evicted', 'superseded'] as const) {
    const counted = Array.from(stats[reason]).reduce((sum, n) => sum + n, 0)
    t.equal(gaps.get(reason)?.length ?? 0, counted, `${reason}: the gap frames name as many seqs as the drop counter counted (${counted})`)
  }
  t.ok((gaps.get('superseded')?.length ?? 0) > 0, 'conflated messages are reported as superseded')
  reader.close()
})

t.test('a retried publish with the same id is stored and delivered once', async t => {
  const { app, url } = await listenApp(t, { apiKey: 'k' })
  const publisher = await TestClient.connect(`${url}/ws`)
  const member = await TestClient.connect(`${url}/ws`)
  await publisher.request({ op: 'join', room: 'orders' })
  await member.request({ op: 'join', room: 'orders' })
  t.same(await publisher.request({ op: 'publish', room: 'orders', data: 'order-1', id: 'o-1' }), { op: 'reply', ref: 2, ok: true, seq: 1 })
  t.same(await publisher.request({ op: 'publish', room: 'orders', data: 'order-1', id: 'o-1' }), { op: 'reply', ref: 3, ok: true, seq: 1, duplicate: true })
  t.match(await publisher.request({ op: 'publish', room: 'orders', data: 'order-1', id: 'o-1' }), { seq: 1, duplicate: true })
  const headers = { authorization: 'Bearer k' }
  const http = await app.inject({ method: 'POST', url: '/api/rooms/orders/messages', headers: { ...headers, 'idempotency-key': 'o-2' }, payload: { data: 'order-2' } })
  t.same(http.json(), { seq: 2, recipients: 2 })
  const retry = await app.inject({ method: 'POST', url: '/api/rooms/orders/messages', headers: { ...headers, 'idempotency-key': 'o-2' }, payload: { data: 'order-2' } })
  t.same(retry.json(), { seq: 2, recipients: 0, duplicate: true })
  t.same((await app.inject({ method: 'POST', url: '/api/rooms/orders/messages', headers, payload: { data: 'x', id: 'o-1' } })).json(), { seq: 1, recipients: 0, duplicate: true }, 'the body id and the WebSocket id are one namespace')
  await member.request({ op: 'ping' })
  t.same(member.received.filter(m => m.op === 'message').map(m => m.data), ['order-1', 'order-2'], 'each order arrived once')
  t.match((await app.inject('/metrics')).body, /^ws_publish_duplicates_total 4$/m)
  publisher.close()
  member.close()
})

t.test('history: the op for members and the HTTP route, with since, limit and reverse', async t => {
  const { app, url } = await listenApp(t, { apiKey: 'k' })
  const client = await TestClient.connect(`${url}/ws`)
  const { client: clientId } = await client.op('welcome')
  t.match(await client.request({ op: 'history', room: 'log' }), { op: 'error', code: 'not_member' })
  const { epoch } = await client.request({ op: 'join', room: 'log' })
  for (let i = 1; i <= 5; i++) await client.request({ op: 'publish', room: 'log', data: { i }, priority: i === 5 ? 'high' : 'normal' })
  const page = await client.request({ op: 'history', room: 'log', since: 1, limit: 2 })
  t.match(page, { op: 'reply', ok: true, room: 'log', seq: 5, epoch })
  t.match(page.messages, [{ seq: 2, data: { i: 2 }, priority: 'normal', from: clientId }, { seq: 3 }])
  t.equal((page.messages as unknown[]).length, 2)
  const newest = await client.request({ op: 'history', room: 'log', limit: 1, reverse: true })
  t.match(newest.messages, [{ seq: 5, data: { i: 5 }, priority: 'high' }])
  t.match(await client.request({ op: 'history', room: 'log', limit: 5000 }), { op: 'error', code: 'bad_request' }, 'limit is at most 1000')
  const http = await app.inject({ url: '/api/rooms/log/history?since=3&limit=10', headers: { authorization: 'Bearer k' } })
  t.match(http.json(), { room: 'log', seq: 5, epoch, messages: [{ seq: 4, data: { i: 4 }, priority: 'normal' }, { seq: 5 }] })
  const reverse = await app.inject({ url: '/api/rooms/log/history?reverse=true&limit=2', headers: { authorization: 'Bearer k' } })
  t.same(reverse.json().messages.map((m: { seq: number }) => m.seq), [5, 4])
  t.equal((await app.inject({ url: '/api/rooms/log/history?limit=abc', headers: { authorization: 'Bearer k' } })).json().code, 'bad_request')
  client.close()
})

t.test('presence: paginated members over the op and HTTP, joined and left events for watchers', async t => {
  const { app, url } = await listenApp(t, { apiKey: 'k', maxRoomsPerConnection: 4 })
  const watcher = await TestClient.connect(`${url}/ws`)
  await watcher.request({ op: 'join', room: 'hall', presence: true, info: { name: 'watcher' } })
  const members = await Promise.all(Array.from({ length: 250 }, () => TestClient.connect(`${url}/ws`)))
  const ids = await Promise.all(members.map(async member => {
    const { client } = await member.op('welcome')
    await member.request({ op: 'join', room: 'hall' })
    return client as string
  }))
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await watcher.request({ op: 'presence', room: 'hall', limit: 100, ...(cursor === undefined ? {} : { cursor }) })
    t.match(page, { op: 'reply', ok: true, room: 'hall', total: 251 })
    seen.push(...(page.members as { client: string }[]).map(m => m.client))
    cursor = page.cursor as string | undefined
    pages++
  } while (cursor !== undefined)
  t.equal(pages, 3)
  t.same(new Set(seen), new Set([...ids, seen[0]]), 'every member once')
  t.equal(seen.length, 251)
  const http = await app.inject({ url: '/api/rooms/hall/presence?limit=1', headers: { authorization: 'Bearer k' } })
  t.match(http.json(), { room: 'hall', total: 251, members: [{ info: { name: 'watcher' } }], cursor: String })
  t.type(http.json().members[0].joinedAt, 'number')

  const joinedEvents = new Set<string>()
  while (joinedEvents.size < 250) joinedEvents.add((await watcher.waitFor(m => m.op === 'joined')).client as string)
  t.same(joinedEvents, new Set(ids), 'a joined event per member')
  await members[0]!.request({ op: 'leave', room: 'hall' })
  t.match(await watcher.waitFor(m => m.op === 'left'), { op: 'left', room: 'hall', client: ids[0] })
  members[1]!.close()
  t.match(await watcher.waitFor(m => m.op === 'left'), { client: ids[1] }, 'a closed connection leaves too')
  t.match(await members[2]!.request({ op: 'join', room: 'x', info: { pad: 'z'.repeat(2000) } }), { op: 'error', code: 'bad_request' }, 'info is bounded')
  t.match(await members[2]!.request({ op: 'presence', room: 'other' }), { op: 'error', code: 'not_member' })
  for (const member of members) member.close()
  watcher.close()
})

t.test('a member that is already in the room cannot recover over its own queue', async t => {
  const { url } = await listenApp(t)
  const client = await TestClient.connect(`${url}/ws`)
  const { epoch } = await client.request({ op: 'join', room: 'r' })
  t.match(await client.request({ op: 'join', room: 'r', since: { seq: 0, epoch } }), { op: 'error', code: 'bad_request', message: /history op/ })
  t.match(await client.request({ op: 'join', room: 'r' }), { op: 'reply', seq: 0, epoch }, 'a plain re-join is harmless')
  client.close()
})

t.test('members that stay joined are told when the stream starts a new life', async t => {
  const { app, url } = await listenApp(t, { historyTtlMs: 1000 })
  const client = await TestClient.connect(`${url}/ws`)
  const { epoch } = await client.request({ op: 'join', room: 'idle' })
  await app.hub.publish('idle', 1, { priority: 2 })
  t.match(await client.op('message'), { seq: 1 })
  // Waiting out HISTORY_TTL_MS is the event here: the stream expires while the member stays.
  await new Promise(resolve => setTimeout(resolve, 1300))
  await app.hub.publish('idle', 2, { priority: 2 })
  const notice = await client.op('epoch')
  t.match(notice, { op: 'epoch', room: 'idle' })
  t.not(notice.epoch, epoch)
  t.match(await client.op('message'), { seq: 1, data: 2 }, 'seqs start again at 1, after the notice')
  client.close()
})
