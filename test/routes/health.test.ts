import t from 'tap'
import { buildApp, injectClient } from '../helpers/app.js'

t.test('liveness and readiness', async t => {
  const app = await buildApp(t)
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  await injectClient(app)
  t.same((await app.inject('/readyz')).json(), { status: 'ready', connections: 1, rooms: 0 })
  app.lifecycle.draining = true
  const draining = await app.inject('/readyz')
  t.equal(draining.statusCode, 503)
  t.same(draining.json(), { status: 'draining' })
  t.equal((await app.inject('/healthz')).statusCode, 200, 'still alive while draining')
  await t.rejects(app.injectWS('/ws'), /503/, 'no new upgrades while draining')
})
