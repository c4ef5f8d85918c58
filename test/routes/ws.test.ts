import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { TestClient, buildApp, injectClient, listenApp } from '../helpers/app.js'

t.test('welcome frame announces the client id, version and limits', async t => {
  const app = await buildApp(t, { heartbeatMs: 30_000, maxPayload: 4096 })
  const client = await injectClient(app)
  const welcome = await client.op('welcome')
  t.match(welcome, { op: 'welcome', version: 1, heartbeatMs: 30_000, maxPayload: 4096 })
  t.match(welcome.client, /^[0-9a-z]+$/)
  client.close()
})

t.test('join, publish, leave: replies carry the ref and members get the message', async t => {
  const app = await buildApp(t)
  const alice = await injectClient(app)
  const bob = await injectClient(app)
  const aliceId = (await alice.op('welcome')).client
  const joined = await alice.request({ op: 'join', room: 'lobby' })
  t.same(joined, { op: 'reply', ref: 1, ok: true, room: 'lobby', seq: 0, epoch: joined.epoch })
  t.type(joined.epoch, 'string', 'the join reply names the stream’s epoch')
  await bob.request({ op: 'join', room: 'lobby' })
  t.same(await alice.request({ op: 'publish', room: 'lobby', data: { text: 'hi' }, priority: 'high' }), { op: 'reply', ref: 2, ok: true, seq: 1 })
  for (const client of [alice, bob]) {
    t.match(await client.op('message'), { room: 'lobby', seq: 1, data: { text: 'hi' }, priority: 'high', from: aliceId })
  }
  t.match(await bob.request({ op: 'join', room: 'lobby' }), { seq: 1 }, 'a join reports the latest seq')
  t.same(await bob.request({ op: 'leave', room: 'lobby' }), { op: 'reply', ref: 3, ok: true, room: 'lobby' })
  await alice.request({ op: 'publish', room: 'lobby', data: 2 })
  t.match(await alice.op('message'), { seq: 2 })
  t.same(await bob.request({ op: 'ping' }), { op: 'pong', ref: 4 })
  t.notOk(bob.received.some(m => m.op === 'message'), 'bob left before seq 2')
  t.same(app.hub.listRooms(), [{ room: 'lobby', members: 1 }])
})

t.test('publishing to a room the connection has not joined is refused', async t => {
  const app = await buildApp(t)
  const client = await injectClient(app)
  t.match(await client.request({ op: 'publish', room: 'elsewhere', data: 1 }), { op: 'error', code: 'not_member', message: /join elsewhere/ })
})

t.test('at most MAX_ROOMS_PER_CONNECTION rooms', async t => {
  const app = await buildApp(t, { maxRoomsPerConnection: 2 })
  const client = await injectClient(app)
  await client.request({ op: 'join', room: 'a' })
  await client.request({ op: 'join', room: 'b' })
  t.match(await client.request({ op: 'join', room: 'a' }), { op: 'reply' }, 'rejoining does not count')
  t.match(await client.request({ op: 'join', room: 'c' }), { op: 'error', code: 'too_many_rooms' })
})

t.test('bad input gets bad_request and the connection stays open', async t => {
  const app = await buildApp(t)
  const client = await injectClient(app)
  client.send('{"op":')
  t.match(await client.op('error'), { code: 'bad_request', message: /malformed JSON/ })
  client.send({ op: 'teleport', ref: 'x' })
  t.match(await client.op('error'), { code: 'bad_request', ref: 'x', message: /unknown op "teleport"/ })
  client.send({ op: 'publish', room: 'r', ref: 3 })
  t.match(await client.op('error'), { code: 'bad_request', ref: 3, message: 'publish: data is required' })
  client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  t.match(await client.op('error'), { code: 'bad_request', message: /binary frames/ })
  client.send('hello there')
  t.match(await client.op('error'), { code: 'bad_request', message: /text command/ })
  t.same(await client.request({ op: 'ping' }), { op: 'pong', ref: 1 }, 'still open')
  const metrics = await app.inject('/metrics')
  t.match(metrics.body, /ws_protocol_errors_total\{code="bad_request"\} 5/)
})

t.test('broadcast is forbidden unless ALLOW_CLIENT_BROADCAST', async t => {
  const closed = await buildApp(t)
  const client = await injectClient(closed)
  t.match(await client.request({ op: 'broadcast', data: 1 }), { code: 'forbidden' })

  const open = await buildApp(t, { allowClientBroadcast: true })
  const sender = await injectClient(open)
  const listener = await injectClient(open)
  t.match(await sender.request({ op: 'broadcast', data: { up: true }, priority: 0 }), { op: 'reply', recipients: 2 })
  t.match(await listener.op('broadcast'), { data: { up: true }, priority: 'critical' })
})

t.test('text commands of the seed protocol', async t => {
  const app = await buildApp(t)
  const client = await injectClient(app)
  const other = await injectClient(app)
  client.send('msg:nobody hears')
  t.match(await client.op('error'), { code: 'not_member' })
  client.send('join:roomA')
  other.send('join:roomA')
  await other.request({ op: 'ping' })
  await client.request({ op: 'ping' })
  client.send('msg:hello')
  t.match(await other.op('message'), { room: 'roomA', seq: 1, data: 'hello', priority: 'normal' })
  client.send('task:ping me')
  t.same(await client.waitFor(m => m.op === 'reply' && 'data' in m), { op: 'reply', ok: true, data: 'ping me' })
  client.send('leave:roomA')
  await client.request({ op: 'ping' })
  t.same(app.hub.listRooms(), [{ room: 'roomA', members: 1 }])
})

t.test('tasks run on the worker pool and are always answered', async t => {
  const app = await buildApp(t)
  const client = await injectClient(app)
  t.same(await client.request({ op: 'task', name: 'echo', data: { a: [1, 2] } }), { op: 'reply', ref: 1, ok: true, data: { a: [1, 2] } })
  t.match(await client.request({ op: 'task', name: 'sha256', data: 'abc' }), { ok: true, data: /^[0-9a-f]{64}$/ })
  client.send({ op: 'task', name: 'echo', data: 'no ref' })
  t.same(await client.waitFor(m => m.op === 'reply' && m.data === 'no ref'), { op: 'reply', ok: true, data: 'no ref' })
  t.match(await client.request({ op: 'task', name: 'nope' }), { op: 'error', code: 'unknown_task' })
})

t.test('rate limit: ops over the bucket get rate_limited', async t => {
  const app = await buildApp(t, { rateLimitPerSec: 1, rateLimitBurst: 3 })
  const client = await injectClient(app)
  for (let ref = 1; ref <= 5; ref++) client.send({ op: 'ping', ref })
  const answers = await Promise.all([1, 2, 3, 4, 5].map(ref => client.waitFor(m => m.ref === ref)))
  t.same(answers.map(a => a.op), ['pong', 'pong', 'pong', 'error', 'error'])
  t.match(answers[4], { code: 'rate_limited' })
})

t.test('a connection that keeps sending far over the limit is closed with 1008', async t => {
  const app = await buildApp(t, { rateLimitPerSec: 2, rateLimitBurst: 2 })
  const client = await injectClient(app)
  for (let i = 0; i < 30; i++) client.send({ op: 'ping' })
  t.match(await client.closed, { code: 1008, reason: 'rate limit exceeded' })
})

t.test('an upgrade from an Origin that is not allowed gets 403', async t => {
  const app = await buildApp(t, { allowedOrigins: 'https://good.example' })
  await t.rejects(app.injectWS('/ws', { headers: { origin: 'https://evil.example' } }), /Unexpected server response: 403/)
  await t.rejects(app.injectWS('/ws'), /403/, 'a missing Origin is not allowed either')
  const client = await injectClient(app, '/ws', { origin: 'https://good.example' })
  t.match(await client.op('welcome'), { version: 1 })
})

t.test('closing a connection leaves its rooms', async t => {
  // A real socket: injectWS streams never report the close to the server.
  const { app, url } = await listenApp(t)
  const client = await TestClient.connect(`${url}/ws`)
  await client.request({ op: 'join', room: 'r1' })
  await client.request({ op: 'join', room: 'r2' })
  t.equal(app.hub.stats().rooms, 2)
  client.close()
  await client.closed
  await new Promise(resolve => setTimeout(resolve, 20))
  t.same(app.hub.stats(), { connections: 0, rooms: 0, memberships: 0 })
})

t.test('an open connection does not keep the request of its upgrade', async t => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const { app, url } = await listenApp(t)
  const upgrades: WeakRef<object>[] = []
  app.websocketServer.on('connection', (_socket: unknown, request: object) => { upgrades.push(new WeakRef(request)) })
  const client = await TestClient.connect(`${url}/ws`)
  await client.op('welcome')
  t.equal(upgrades.length, 1)
  // deref() keeps its target alive until the end of the current job, so each collection runs in a later one.
  let collected = false
  for (let i = 0; i < 10 && !collected; i++) {
    await new Promise(resolve => setTimeout(resolve, 10))
    gc()
    await new Promise(resolve => setImmediate(resolve))
    collected = upgrades[0]?.deref() === undefined
  }
  t.ok(collected, 'the upgrade request was collected')
  t.same(await client.request({ op: 'ping' }), { op: 'pong', ref: 1 }, 'the connection still works')
  client.close()
  await client.closed
})
