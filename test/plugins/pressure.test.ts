import t from 'tap'
import { TestClient, listenApp, upgradeOutcome } from '../helpers/app.js'

function busy (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* the event loop is blocked on purpose */ }
}

t.test('under pressure, /readyz and new upgrades get 503 while established connections and /metrics are served', async t => {
  const { app, url } = await listenApp(t, { maxEventLoopDelayMs: 30 })
  const client = await TestClient.connect(`${url}/ws`)
  await client.op('welcome')
  const underPressure = (): boolean => (app as unknown as { isUnderPressure: () => boolean }).isUnderPressure()
  // Block the loop in bursts until a sample sees the delay; the sampler runs every 500 ms.
  const started = Date.now()
  while (!underPressure()) {
    if (Date.now() - started > 10_000) throw new Error('never under pressure')
    busy(150)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const readyz = await app.inject('/readyz')
  t.equal(readyz.statusCode, 503)
  t.match(readyz.json(), { code: 'under_pressure', message: /eventLoopDelay/ })
  t.equal((await upgradeOutcome(`${url}/ws`)).status, 503, 'a new upgrade is refused')
  t.same(await client.request({ op: 'ping' }), { op: 'pong', ref: 1 }, 'an established connection is still served')
  t.equal((await app.inject('/metrics')).statusCode, 200, '/metrics still answers')
  client.close()
})
