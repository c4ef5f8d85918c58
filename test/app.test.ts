import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import t from 'tap'
import switchboard from '../app.js'
import { TestClient } from './helpers/app.js'

t.test('embedded with a prefix into a host that has its own routes and its own @fastify/websocket', async t => {
  const host = Fastify({ logger: false })
  await host.register(fastifyWebsocket)
  host.get('/hello', async () => ({ host: true }))
  host.get('/host-ws', { websocket: true }, socket => { socket.send('{"op":"host"}') })
  await host.register(switchboard, { prefix: '/rt', env: {}, workers: 1, apiKey: 'secret' })
  await host.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => host.close())
  const base = `127.0.0.1:${(host.server.address() as { port: number }).port}`

  const client = await TestClient.connect(`ws://${base}/rt/ws`)
  t.match(await client.op('welcome'), { version: 1 })
  t.match(await client.request({ op: 'join', room: 'embedded' }), { op: 'reply', seq: 0 })
  t.equal(host.server.listenerCount('upgrade'), 1, 'the host’s @fastify/websocket carries our connection: no second registration')

  const hostSocket = await TestClient.connect(`ws://${base}/host-ws`)
  t.same(await hostSocket.op('host'), { op: 'host' }, 'the host’s own websocket route still works')
  t.equal((await host.inject('/hello')).json().host, true)

  const api = await host.inject({ method: 'GET', url: '/rt/api/rooms', headers: { authorization: 'Bearer secret' } })
  t.same(api.json(), { rooms: [{ room: 'embedded', members: 1 }] })
  t.equal((await host.inject('/rt/metrics')).statusCode, 200)
  t.equal((await host.inject('/rt/readyz')).statusCode, 200)
  t.equal((await host.inject('/metrics')).statusCode, 404, 'nothing is mounted outside the prefix')
  t.equal((await host.inject('/ws')).statusCode, 404)

  for (const decorator of ['hub', 'outbox', 'workerPool', 'lifecycle', 'metricsRegistry']) {
    t.notOk(host.hasDecorator(decorator), `${decorator} does not leak into the host`)
  }
  const hostRoute = await host.inject('/hello')
  t.notOk('x-powered-by' in hostRoute.headers)
  const metrics = (await host.inject('/rt/metrics')).body
  t.notMatch(metrics, /route="\/hello"/, 'the host’s routes are not measured by our route metrics')
  client.close()
  hostSocket.close()
})

t.test('registers @fastify/websocket itself when the host has none', async t => {
  const host = Fastify({ logger: false })
  await host.register(switchboard, { env: {}, workers: 1 })
  await host.ready()
  t.teardown(() => host.close())
  t.notOk(host.hasDecorator('websocketServer'), 'our own registration stays inside the app')
})

t.test('bad options fail at registration with a clear message', async t => {
  const host = Fastify({ logger: false })
  host.register(switchboard, { env: {}, sendQueueSize: -1 })
  await t.rejects(async () => { await host.ready() }, { message: /^option sendQueueSize must be an integer from 1/ })
  const other = Fastify({ logger: false })
  other.register(switchboard, { env: { MAX_PAYLOAD: 'huge' } })
  await t.rejects(async () => { await other.ready() }, { message: /^MAX_PAYLOAD must be an integer/ })
  const typo = Fastify({ logger: false })
  typo.register(switchboard, { env: {}, sendQueueSzie: 5 } as never)
  await t.rejects(async () => { await typo.ready() }, { message: 'unknown option sendQueueSzie' })
})
