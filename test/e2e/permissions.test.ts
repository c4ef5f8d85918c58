import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import t from 'tap'
import WebSocket from 'ws'
import { TestClient, listenApp, upgradeOutcome } from '../helpers/app.js'

const SECRET = 'permissions-secret-of-32-bytes-ok'
const sign = (claims: Record<string, unknown>): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))

const namespaces = {
  namespaces: [
    { rooms: 'chat:*', join: 'authenticated', publish: 'authenticated', history: 'authenticated', presence: 'authenticated', maxMembers: 2 },
    { rooms: 'news:*', join: 'anyone', publish: 'server', history: 'anyone', presence: 'server', presenceEvents: false, historySize: 2 },
    { rooms: 'private:*', join: 'granted', publish: 'granted', history: 'granted', presence: 'granted' }
  ]
}

t.test('namespaces, grants and per-room tokens over the WebSocket; refusals say which capability on which room', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'rooms-')), 'rooms.json')
  writeFileSync(file, JSON.stringify(namespaces))
  const { app, url } = await listenApp(t, { jwtSecret: SECRET, allowAnonymous: true, roomsConfig: file, apiKey: 'k' })
  const anonymous = await TestClient.connect(`${url}/ws`)
  const alice = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'alice' })}`)
  const bob = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'bob', rooms: { 'private:b*': ['join', 'history'] } })}`)

  t.match(await anonymous.request({ op: 'join', room: 'chat:general' }), { op: 'error', code: 'forbidden', message: 'no join capability on chat:general' })
  t.match(await alice.request({ op: 'join', room: 'chat:general' }), { op: 'reply', ok: true })
  t.match(await alice.request({ op: 'publish', room: 'chat:general', data: 1 }), { op: 'reply', seq: 1 })
  t.match(await anonymous.request({ op: 'join', room: 'news:today' }), { op: 'reply', ok: true }, 'news is open to anyone')
  t.match(await anonymous.request({ op: 'publish', room: 'news:today', data: 'x' }), { op: 'error', code: 'forbidden', message: 'no publish capability on news:today' })
  t.match(await anonymous.request({ op: 'presence', room: 'news:today' }), { op: 'error', code: 'forbidden', message: 'no presence capability on news:today' })
  t.match(await anonymous.request({ op: 'history', room: 'news:today' }), { op: 'reply', ok: true })
  const published = await app.inject({ method: 'POST', url: '/api/rooms/news:today/messages', headers: { authorization: 'Bearer k' }, payload: { data: 'from the backend' } })
  t.equal(published.statusCode, 202, 'server-only publishing goes through the HTTP API')
  t.match(await anonymous.op('message'), { data: 'from the backend' })
  for (const data of ['two', 'three']) {
    await app.inject({ method: 'POST', url: '/api/rooms/news:today/messages', headers: { authorization: 'Bearer k' }, payload: { data } })
  }
  const kept = await anonymous.request({ op: 'history', room: 'news:today' })
  t.same((kept.messages as { data: string }[]).map(m => m.data), ['two', 'three'], 'the namespace keeps 2 messages')

  t.match(await bob.request({ op: 'join', room: 'private:bunker' }), { op: 'reply', ok: true }, 'a grant on private:b*')
  t.match(await bob.request({ op: 'publish', room: 'private:bunker', data: 1 }), { op: 'error', code: 'forbidden', message: 'no publish capability on private:bunker' })
  t.match(await bob.request({ op: 'join', room: 'private:attic' }), { op: 'error', code: 'forbidden' }, 'the grant does not cover it')
  t.match(await alice.request({ op: 'join', room: 'private:attic' }), { op: 'error', code: 'forbidden' })
  const roomToken = await sign({ sub: 'alice', room: 'private:attic', capabilities: ['join', 'publish'] })
  t.match(await alice.request({ op: 'join', room: 'private:attic', token: roomToken }), { op: 'reply', ok: true }, 'a per-room token for this room and user')
  t.match(await alice.request({ op: 'publish', room: 'private:attic', data: 'up here' }), { op: 'reply', seq: 1 })
  t.match(await bob.request({ op: 'join', room: 'private:attic', token: roomToken }), { op: 'error', code: 'forbidden', message: /another user/ }, 'another user’s room token')
  t.match(await alice.request({ op: 'join', room: 'private:cellar', token: roomToken }), { op: 'error', code: 'forbidden', message: /not private:cellar/ })

  const carol = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'carol' })}`)
  const dave = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'dave' })}`)
  t.match(await carol.request({ op: 'join', room: 'chat:general' }), { op: 'reply', ok: true })
  t.match(await dave.request({ op: 'join', room: 'chat:general' }), { op: 'error', code: 'forbidden', message: 'chat:general is full (2 members)' })
  t.match((await app.inject('/metrics')).body, /^ws_protocol_errors_total\{code="forbidden"\} 9$/m, 'refusals are counted by code')
  for (const client of [anonymous, alice, bob, carol, dave]) client.close()
})

t.test('recovering needs history, presence events need presence; room tokens do not open connections; anonymous connections get no tasks or broadcasts', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'rooms-')), 'rooms.json')
  writeFileSync(file, JSON.stringify({ namespaces: [{ rooms: 'lobby:*', join: 'anyone', publish: 'anyone', history: 'granted', presence: 'granted' }] }))
  const { url } = await listenApp(t, { jwtSecret: SECRET, allowAnonymous: true, roomsConfig: file, allowClientBroadcast: true })
  const anonymous = await TestClient.connect(`${url}/ws`)
  const { epoch } = await anonymous.request({ op: 'join', room: 'lobby:a' })
  await anonymous.request({ op: 'leave', room: 'lobby:a' })
  t.match(await anonymous.request({ op: 'join', room: 'lobby:a', since: { seq: 0, epoch } }), { op: 'error', code: 'forbidden', message: /no history capability/ }, 'a replay is a history read')
  t.match(await anonymous.request({ op: 'join', room: 'lobby:a', presence: true }), { op: 'reply', ok: true })
  const other = await TestClient.connect(`${url}/ws`)
  await other.request({ op: 'join', room: 'lobby:a' })
  await anonymous.request({ op: 'ping' })
  t.notOk(anonymous.received.some(m => m.op === 'joined'), 'no presence events without the presence capability')
  t.match(await anonymous.request({ op: 'task', name: 'echo', data: 1 }), { op: 'error', code: 'forbidden', message: /anonymous/ })
  t.match(await anonymous.request({ op: 'broadcast', data: 1 }), { op: 'error', code: 'forbidden', message: /anonymous/ })
  const roomToken = await sign({ sub: 'alice', room: 'lobby:a' })
  t.equal((await upgradeOutcome(`${url}/ws?token=${roomToken}`)).status, 401, 'a room token cannot open a connection')
  const noExp = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET))
  t.equal((await upgradeOutcome(`${url}/ws?token=${noExp}`)).status, 401, 'a token without exp is refused')
  const user = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'alice' })}`)
  t.match(await user.request({ op: 'task', name: 'echo', data: 1 }), { op: 'reply', data: 1 }, 'a user may run tasks')
  const echoed = new WebSocket(`${url}/ws?token=${await sign({ sub: 'bob' })}`, ['switchboard', 'chat'])
  await new Promise(resolve => echoed.once('open', resolve))
  t.equal(echoed.protocol, 'switchboard')
  echoed.close()
  for (const client of [anonymous, other, user]) client.close()
})

t.test('msg: goes to the joined rooms where the connection may publish, and is refused where it may publish in none', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'rooms-')), 'rooms.json')
  writeFileSync(file, JSON.stringify(namespaces))
  const { url } = await listenApp(t, { jwtSecret: SECRET, allowAnonymous: true, roomsConfig: file })
  const alice = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'alice' })}`)
  const reader = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'carol' })}`)
  t.match(await alice.request({ op: 'join', room: 'news:today' }), { op: 'reply', ok: true })
  alice.send('msg:nobody may hear')
  t.match(await alice.op('error'), { code: 'forbidden', message: 'no publish capability on any joined room' }, 'news is server-only')
  t.match(await reader.request({ op: 'join', room: 'news:today' }), { op: 'reply', ok: true })
  t.match(await reader.request({ op: 'join', room: 'chat:general' }), { op: 'reply', ok: true })
  t.match(await alice.request({ op: 'join', room: 'chat:general' }), { op: 'reply', ok: true })
  alice.send('msg:hello')
  t.match(await reader.op('message'), { room: 'chat:general', data: 'hello' }, 'only where alice may publish')
  t.match(await reader.request({ op: 'history', room: 'news:today' }), { messages: [] }, 'nothing in news')
  for (const client of [alice, reader]) client.close()
})
