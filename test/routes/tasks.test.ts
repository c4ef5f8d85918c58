import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { loadConfig, type ConfigOverrides } from '../../lib/config.js'
import { PiscinaWorkerPool } from '../../lib/tasks/runner.js'
import httpErrors from '../../plugins/http-errors.js'
import taskRoutes from '../../routes/tasks.js'
import { parseApiKeys } from '../../lib/auth/bearer.js'

const API_KEY = 'test-key'
const AUTH = { authorization: `Bearer ${API_KEY}` }
const tasksModule = fileURLToPath(new URL('../fixtures/tasks.mjs', import.meta.url))

async function build (t: Test, overrides: ConfigOverrides = {}): Promise<{ app: FastifyInstance, runner: PiscinaWorkerPool }> {
  const runner = await PiscinaWorkerPool.create(loadConfig({}, { workers: 1, tasksModule, ...overrides }), { workerExecArgv: [] })
  const app = Fastify()
  app.decorate('workerPool', runner)
  await app.register(httpErrors)
  await app.register(taskRoutes, { prefix: '/api', apiKeys: parseApiKeys(API_KEY, '') })
  t.teardown(async () => {
    await app.close()
    await runner.close()
  })
  return { app, runner }
}

function runTask (app: FastifyInstance, body: unknown, headers: Record<string, string> = AUTH): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/api/tasks', headers, payload: body as Record<string, unknown> })
}

t.test('requires the API key as a bearer token', async t => {
  const { app } = await build(t)
  const refused: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${API_KEY}` }, { authorization: `Bearer ${API_KEY}x` }]
  for (const headers of refused) {
    const response = await runTask(app, { name: 'echo', data: 1 }, headers)
    t.equal(response.statusCode, 401, JSON.stringify(headers))
    t.equal(response.json().code, 'unauthorized')
  }
  const dead = await app.inject({ method: 'GET', url: '/api/tasks/dead-letters' })
  t.equal(dead.statusCode, 401)
  const lowercase = await runTask(app, { name: 'echo', data: 1 }, { authorization: `bearer ${API_KEY}` })
  t.equal(lowercase.statusCode, 200, 'the scheme is case-insensitive')
})

t.test('runs a task and maps every error to a status', async t => {
  const { app } = await build(t, { maxTaskRetries: 1 })
  const ok = await runTask(app, { name: 'echo', data: { x: 1 }, priority: 'critical', key: 'k' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { data: { x: 1 } })

  const cases: Array<[unknown, number, string]> = [
    [{ name: 'nope', data: 1 }, 404, 'unknown_task'],
    [{ name: 'fail', data: 'bad' }, 422, 'task_failed'],
    [{ name: 'waitForAbort', timeoutMs: 50 }, 504, 'timeout'],
    [{ data: 1 }, 400, 'bad_request'],
    [{ name: 'echo', priority: 'urgent' }, 400, 'bad_request'],
    [{ name: 'echo', retries: -1 }, 400, 'bad_request'],
    [{ name: 'echo', retries: 2 }, 400, 'bad_request']
  ]
  for (const [body, status, code] of cases) {
    const response = await runTask(app, body)
    t.equal(response.statusCode, status, JSON.stringify(body))
    t.match(response.json(), { code, message: String })
  }

  const malformed = await app.inject({
    method: 'POST',
    url: '/api/tasks',
    headers: { ...AUTH, 'content-type': 'application/json' },
    payload: '{"name":'
  })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'bad_request')

  const letters = await app.inject({ method: 'GET', url: '/api/tasks/dead-letters', headers: AUTH })
  t.equal(letters.statusCode, 200)
  t.match(letters.json(), {
    deadLetters: [
      { name: 'fail', data: 'bad', code: 'task_failed', message: 'task says no', attempts: 1 },
      { name: 'waitForAbort', code: 'timeout' }
    ]
  })
})

t.test('429 when the queue is full, 503 while shutting down', async t => {
  const { app, runner } = await build(t, { workerQueueSize: 1 })
  const responses = await Promise.all([
    runTask(app, { name: 'slow', data: { ms: 100 } }),
    runTask(app, { name: 'echo', data: 2 }),
    runTask(app, { name: 'echo', data: 3 })
  ])
  t.same(responses.map(response => response.statusCode).sort(), [200, 200, 429])
  t.match(responses.find(response => response.statusCode === 429)?.json(), { code: 'overloaded' })

  await runner.drain(1000)
  const late = await runTask(app, { name: 'echo', data: 4 })
  t.equal(late.statusCode, 503)
  t.equal(late.json().code, 'shutting_down')
})

t.test('refuses to register without an API key', async t => {
  const app = Fastify()
  app.register(taskRoutes, { apiKeys: [] })
  await t.rejects(async () => { await app.ready() }, { message: /at least one API key is needed/ })
})
