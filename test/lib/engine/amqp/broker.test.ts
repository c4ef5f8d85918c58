import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { AmqpBroker } from '../../../../lib/engine/amqp/broker.js'
import { presenceAcrossReconnect } from '../../../helpers/broker-reconnect.js'
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
    const drop = async (): Promise<void> => {
      proxy.cut()
      while (broker.ready()) await sleep(10)
      proxy.restore()
    }
    const { events } = await presenceAcrossReconnect(broker, drop, { ready: () => broker.ready(), timeoutMs: 10_000 })
    t.same(events.filter(event => event.room === 'quiet'), [], 'a room unwatched before the drop is not bound again')
  })
}
