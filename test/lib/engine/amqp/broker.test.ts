import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { AmqpBroker } from '../../../../lib/engine/amqp/broker.js'
import type { PresenceEvent } from '../../../../lib/engine/types.js'
import { AMQP_URL, cleanUpTestResources, testExchange } from '../../../helpers/engine.js'
import { TcpProxy } from '../../../helpers/tcp-proxy.js'

cleanUpTestResources(t)

for (const routing of ['rooms', 'fanout'] as const) {
  t.test(`${routing} routing: after the connection comes back, watched rooms get their presence events again, unwatched ones do not`, async t => {
    const proxy = await TcpProxy.start(Number(new URL(AMQP_URL).port || 5672))
    t.teardown(() => proxy.close())
    const url = new URL(AMQP_URL)
    url.port = String(proxy.port)
    const broker = await AmqpBroker.open({
      url: url.href,
      exchange: testExchange(),
      routing,
      positionCheckMs: 60_000,
      read: async () => { throw new Error('no history here') },
      positions: async rooms => rooms.map(() => ({ seq: 0, epoch: 'e' }))
    })
    t.teardown(() => broker.close())
    const events: PresenceEvent[] = []
    broker.handle({ publication () {}, broadcast () {}, presence (event) { events.push(event) }, epoch () {}, lost () {} })
    for (const room of ['watched', 'quiet']) await broker.subscribe(room)
    await broker.watch('watched')
    await broker.watch('quiet')
    await broker.unwatch('quiet')

    proxy.cut()
    while (broker.ready()) await sleep(10)
    proxy.restore()
    const deadline = Date.now() + 10_000
    for (let n = 0; !events.some(event => event.room === 'watched'); n++) {
      if (Date.now() > deadline) throw new Error('no presence event after the reconnect')
      if (broker.ready()) {
        await broker.presence({ room: 'quiet', kind: 'joined', client: `q${n}` })
        await broker.presence({ room: 'watched', kind: 'joined', client: `w${n}` })
      }
      await sleep(50)
    }
    t.same(events.filter(event => event.room === 'quiet'), [], 'a room unwatched before the drop is not bound again')
  })
}
