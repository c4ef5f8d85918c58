import Fastify from 'fastify'
import t, { type Test } from 'tap'
import switchboard from '../../app.js'
import { ERROR_STATUS } from '../../lib/protocol/errors.js'
import httpErrors from '../../plugins/http-errors.js'

const auth = { authorization: 'Bearer k', 'content-type': 'application/json' }

async function host (t: Test) {
  const app = Fastify({ logger: false })
  await app.register(switchboard, { prefix: '/rt', env: {}, workers: 1, apiKey: 'k' })
  app.get('/host', async () => ({ host: true }))
  await app.ready()
  t.teardown(() => app.close())
  return app
}

/** Every error body is exactly {code, message}, with the catalogue's status for the code. */
function assertError (t: Test, response: { statusCode: number, json: () => unknown }, code: keyof typeof ERROR_STATUS, label: string): void {
  const body = response.json() as Record<string, unknown>
  t.same(Object.keys(body).sort(), ['code', 'message'], `${label}: only code and message`)
  t.equal(body.code, code, `${label}: code ${code}`)
  t.equal(typeof body.message, 'string')
  t.equal(response.statusCode, ERROR_STATUS[code], `${label}: status ${ERROR_STATUS[code]}`)
}

t.test('HTTP errors speak the catalogue of the WebSocket protocol, in one {code, message} shape', async t => {
  const app = await host(t)
  const post = (url: string, payload: string) => app.inject({ method: 'POST', url, headers: auth, payload })
  assertError(t, await post('/rt/api/rooms/bad%20room/messages', '{"data":1}'), 'bad_request', 'a bad room name')
  assertError(t, await post('/rt/api/rooms/ok/messages', '{"data":1,"priority":"urgent"}'), 'bad_request', 'a bad priority')
  assertError(t, await post('/rt/api/rooms/ok/messages', '{"data":'), 'bad_request', 'invalid JSON')
  assertError(t, await post('/rt/api/rooms/ok/messages', ''), 'bad_request', 'an empty JSON body')
  assertError(t, await app.inject({ method: 'POST', url: '/rt/api/rooms/ok/messages', headers: { ...auth, 'content-type': 'text/csv' }, payload: 'a,b' }), 'unsupported_media_type', 'a body type we do not read')
  assertError(t, await post('/rt/api/rooms/ok/messages', JSON.stringify({ data: 'x'.repeat(1_100_000) })), 'payload_too_large', 'a body over the limit')
  assertError(t, await app.inject({ method: 'GET', url: '/rt/api/rooms' }), 'unauthorized', 'no API key')
  assertError(t, await app.inject({ method: 'GET', url: '/rt/nowhere' }), 'not_found', 'an unknown route under the prefix')
  assertError(t, await post('/rt/api/tasks', '{"name":"nope"}'), 'unknown_task', 'an unknown task')
  t.match((await app.inject('/nowhere')).json(), { statusCode: 404, error: 'Not Found' }, 'the host’s own 404s stay the host’s')
})

t.test('request bodies are not coerced: a number is not a task name, a string is not a ttl', async t => {
  const app = await host(t)
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, headers: auth, payload: JSON.stringify(payload) })
  assertError(t, await post('/rt/api/tasks', { name: 5 }), 'bad_request', 'a numeric task name')
  assertError(t, await post('/rt/api/tasks', { name: 'echo', retries: '2' }), 'bad_request', 'retries as a string')
  assertError(t, await post('/rt/api/rooms/ok/messages', { data: 1, ttlMs: '100' }), 'bad_request', 'ttlMs as a string')
  const ok = await post('/rt/api/tasks', { name: 'echo', data: 5 })
  t.same(ok.json(), { data: 5 })
})

t.test('client errors of other plugins keep their status and get the catalogue’s word for it', async t => {
  const app = Fastify({ logger: false })
  await app.register(httpErrors)
  const failWith = (statusCode: number) => async () => { throw Object.assign(new Error(`status ${statusCode}`), { statusCode }) }
  app.get('/limited', failWith(429))
  app.get('/method', failWith(405))
  app.get('/broken', async () => { throw new Error('a bug') })
  t.teardown(() => app.close())
  assertError(t, await app.inject('/limited'), 'rate_limited', 'a 429 from elsewhere')
  const method = await app.inject('/method')
  t.equal(method.statusCode, 405, 'a status the catalogue has no code for is kept')
  t.same(method.json(), { code: 'bad_request', message: 'status 405' })
  assertError(t, await app.inject('/broken'), 'internal', 'an unexpected error')
  t.equal((await app.inject('/broken')).json().message, 'internal error', 'without its details')
})
