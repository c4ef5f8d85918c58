import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { NatsBroker } from '../../../../lib/engine/nats/broker.js'
import { presenceAcrossReconnect } from '../../../helpers/broker-reconnect.js'
import { NatsServer } from '../../../helpers/nats-server.js'
import { TcpProxy } from '../../../helpers/tcp-proxy.js'

t.test('after the connection comes back, watched rooms get their presence events again, unwatched ones do not', async t => {
  const nats = await NatsServer.start(t)
  const proxy = await TcpProxy.start(nats.port)
  t.teardown(() => proxy.close())
  const broker = await NatsBroker.open({
    url: `nats://127.0.0.1:${proxy.port}`,
    prefix: 'sbtest',
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
  t.same(events.filter(event => event.room === 'quiet'), [], 'a room unwatched before the drop is not subscribed again')
})
