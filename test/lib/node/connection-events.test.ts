import t from 'tap'
import { ConnectionEvents } from '../../../lib/node/connection-events.js'

t.test('logs at most perSecond lines per event kind and reports what it left out', async t => {
  const lines: { level: string, fields: Record<string, unknown>, message: string }[] = []
  const logger = {
    info: (fields: Record<string, unknown>, message: string) => { lines.push({ level: 'info', fields, message }) },
    warn: (fields: Record<string, unknown>, message: string) => { lines.push({ level: 'warn', fields, message }) }
  }
  let now = 0
  const events = new ConnectionEvents(logger, 3, () => now)
  for (let i = 0; i < 100; i++) events.warn('flood', { client: `c${i}` }, 'closed')
  events.info('slow_consumer', { client: 'x' }, 'closed slow')
  t.same(lines.map(l => l.fields.client), ['c0', 'c1', 'c2', 'x'], 'three floods, and another kind has its own budget')
  t.same(lines[0], { level: 'warn', fields: { event: 'flood', client: 'c0' }, message: 'closed' })
  now = 1000
  events.warn('flood', { client: 'later' }, 'closed')
  t.same(lines.at(-1)?.fields, { event: 'flood', client: 'later', suppressed: 97 }, 'the next second reports the 97 left out')
  events.warn('flood', { client: 'again' }, 'closed')
  t.notOk('suppressed' in (lines.at(-1)?.fields ?? {}), 'and counts from zero again')
})
