import t from 'tap'
import { buildApp, injectClient } from '../helpers/app.js'

const auth = { authorization: 'Bearer s3cret' }

t.test('without API_KEY the /api routes do not exist', async t => {
  const app = await buildApp(t)
  t.equal((await app.inject('/api/rooms')).statusCode, 404)
})

t.test('server-side publish, broadcast and room listing', async t => {
  const app = await buildApp(t, { apiKey: 's3cret' })
  const client = await injectClient(app)
  await client.request({ op: 'join', room: 'news' })

  const published = await app.inject({ method: 'POST', url: '/api/rooms/news/messages', headers: auth, payload: { data: { headline: 'up' }, priority: 'high', key: 'top' } })
  t.equal(published.statusCode, 202)
  t.same(published.json(), { seq: 1, recipients: 1 })
  const message = await client.op('message')
  t.match(message, { room: 'news', seq: 1, data: { headline: 'up' }, priority: 'high' })
  t.notOk('from' in message, 'server-side publishes carry no from')

  const broadcast = await app.inject({ method: 'POST', url: '/api/broadcast', headers: auth, payload: { data: 'all hands', priority: 0 } })
  t.equal(broadcast.statusCode, 202)
  t.same(broadcast.json(), { recipients: 1 })
  t.match(await client.op('broadcast'), { data: 'all hands', priority: 'critical' })

  const rooms = await app.inject({ url: '/api/rooms', headers: auth })
  t.same(rooms.json(), { rooms: [{ room: 'news', members: 1 }] })

  const empty = await app.inject({ method: 'POST', url: '/api/rooms/nobody/messages', headers: auth, payload: { data: 1 } })
  t.same(empty.json(), { seq: 1, recipients: 0 }, 'a room without members still takes a seq: the message is kept in history')
})

t.test('authorization is required and checked', async t => {
  const app = await buildApp(t, { apiKey: 's3cret' })
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 's3cret' }, { authorization: 'Bearer s3cret2' }]) {
    const response = await app.inject({ url: '/api/rooms', headers })
    t.equal(response.statusCode, 401, JSON.stringify(headers))
    t.equal(response.json().code, 'unauthorized')
  }
  const publish = await app.inject({ method: 'POST', url: '/api/broadcast', payload: { data: 1 } })
  t.equal(publish.statusCode, 401, 'checked before the body')
})

t.test('bodies and room names are validated with a reason', async t => {
  const app = await buildApp(t, { apiKey: 's3cret' })
  const cases = [
    { url: '/api/rooms/news/messages', payload: {}, reason: /data/ },
    { url: '/api/rooms/news/messages', payload: { data: 1, priority: 'urgent' }, reason: /priority/ },
    { url: '/api/rooms/news/messages', payload: { data: 1, ttlMs: 0 }, reason: /ttlMs/ },
    { url: '/api/rooms/bad%20room/messages', payload: { data: 1 }, reason: /room/ },
    { url: '/api/broadcast', payload: { priority: 'low' }, reason: /data/ }
  ]
  for (const { url, payload, reason } of cases) {
    const response = await app.inject({ method: 'POST', url, headers: auth, payload })
    t.equal(response.statusCode, 400, url)
    t.match(response.json().message, reason)
  }
})

t.test('API_KEYS: several keys, each limited to its scopes', async t => {
  const app = await buildApp(t, { apiKeys: 'pub-key:publish, reader:read, ops:tasks+broadcast, all-key' })
  const as = (key: string) => ({ authorization: `Bearer ${key}` })
  const publish = (key: string) => app.inject({ method: 'POST', url: '/api/rooms/r/messages', headers: as(key), payload: { data: 1 } })
  t.equal((await publish('pub-key')).statusCode, 202)
  const refused = await publish('reader')
  t.equal(refused.statusCode, 403)
  t.same(refused.json(), { code: 'forbidden', message: 'this API key has no publish scope' })
  t.equal((await app.inject({ url: '/api/rooms/r/history', headers: as('reader') })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/rooms', headers: as('pub-key') })).statusCode, 403)
  t.equal((await app.inject({ method: 'POST', url: '/api/broadcast', headers: as('ops'), payload: { data: 1 } })).statusCode, 202)
  t.equal((await app.inject({ method: 'POST', url: '/api/tasks', headers: as('ops'), payload: { name: 'echo', data: 1 } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/api/tasks', headers: as('reader'), payload: { name: 'echo', data: 1 } })).statusCode, 403)
  t.equal((await publish('all-key')).statusCode, 202, 'a key without scopes has all of them')
  t.equal((await publish('nobody')).statusCode, 401)
})

t.test('a bad API_KEYS entry stops the boot, naming the variable', async t => {
  await t.rejects(buildApp(t, { apiKeys: 'k:publish+fly' }), { name: 'ConfigError', message: /^API_KEYS entries must be key or key:scope\+scope .*scope fly/ })
})
