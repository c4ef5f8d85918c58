import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import t from 'tap'
import { loadConfig } from '../../lib/config.js'
import { PiscinaWorkerPool } from '../../lib/tasks/runner.js'
import workerPoolPlugin from '../../plugins/worker-pool.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

t.test('decorates workerPool and releases it on close', async t => {
  const app = Fastify()
  await app.register(workerPoolPlugin, { config: loadConfig({}, { workers: 1, tasksModule: fixture('tasks.mjs') }) })
  await app.ready()
  t.ok(app.hasPlugin('worker-pool'))
  t.ok(app.workerPool instanceof PiscinaWorkerPool)
  t.ok(app.workerPool.has('slow'), 'loads TASKS_MODULE')
  t.equal(await app.workerPool.submit({ name: 'echo', data: 'hi', priority: 2 }), 'hi')
  await app.close()
  await t.rejects(app.workerPool.submit({ name: 'echo', data: 'late', priority: 2 }), { code: 'shutting_down' })
})

t.test('rejects missing options with a clear error', async t => {
  const app = Fastify()
  // @ts-expect-error: the options are what is being tested
  app.register(workerPoolPlugin, {})
  await t.rejects(async () => { await app.ready() }, { message: /worker-pool plugin: options\.config is required/ })
})

t.test('a broken TASKS_MODULE fails the boot', async t => {
  const app = Fastify()
  app.register(workerPoolPlugin, { config: loadConfig({}, { workers: 1, tasksModule: fixture('broken-tasks.mjs') }) })
  await t.rejects(async () => { await app.ready() }, { name: 'ConfigError', message: /failed to load: broken fixture refuses to load/ })
})
