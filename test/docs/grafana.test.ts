import { readFileSync } from 'node:fs'
import t from 'tap'
import { buildApp, injectClient } from '../helpers/app.js'

interface Panel { title: string, targets: { expr: string }[] }

t.test('the Grafana dashboard queries only metrics that a real /metrics scrape has', async t => {
  const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana/switchboard.json', import.meta.url), 'utf8')) as { panels: Panel[], title: string }
  t.equal(dashboard.title, 'Switchboard')
  const app = await buildApp(t, { apiKey: 'k' })
  const client = await injectClient(app)
  await client.request({ op: 'join', room: 'g' })
  await client.request({ op: 'publish', room: 'g', data: 1 })
  await client.request({ op: 'task', name: 'echo', data: 1 })
  await app.inject({ url: '/api/rooms', headers: { authorization: 'Bearer k' } })
  const scrape = (await app.inject('/metrics')).body
  const families = new Set(scrape.split('\n').filter(line => line.startsWith('# TYPE ')).map(line => line.split(' ')[2]))
  const queried = new Set<string>()
  for (const panel of dashboard.panels) {
    t.ok(panel.targets.length > 0, `${panel.title} has a query`)
    for (const { expr } of panel.targets) {
      for (const name of expr.match(/\b(?:ws|nodejs|process|http)_[a-z0-9_]+/g) ?? []) queried.add(name.replace(/_(bucket|sum|count)$/, ''))
    }
  }
  t.ok(queried.size >= 20, `${queried.size} metrics queried`)
  for (const name of queried) t.ok(families.has(name), `${name} is exported`)
})
