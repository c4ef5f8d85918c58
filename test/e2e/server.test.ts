import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import { Priority } from '../../lib/protocol/priority.js'
import { TestClient, listenApp } from '../helpers/app.js'

function rawSocket (client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket
}

t.test('fan-out: every client of a room gets every message, in order', async t => {
  const { url } = await listenApp(t)
  const clients = await Promise.all(Array.from({ length: 200 }, () => TestClient.connect(`${url}/ws`)))
  await Promise.all(clients.map(c => c.request({ op: 'join', room: 'fan' })))
  const publisher = clients[0] as TestClient
  const total = 50
  for (let i = 1; i <= total; i++) publisher.send({ op: 'publish', room: 'fan', data: i })
  const received = await Promise.all(clients.map(async client => {
    const seqs: number[] = []
    for (let i = 0; i < total; i++) {
      const message = await client.op('message')
      seqs.push(message.seq as number)
      if (message.data !== message.seq) throw new Error('data and seq disagree')
    }
    return seqs
  }))
  const expected = Array.from({ length: total }, (_, i) => i + 1)
  t.ok(received.every(seqs => seqs.join() === expected.join()), '200 clients × 50 messages, seq 1..50 each')
  for (const client of clients) client.close()
})

t.test('a slow reader sees critical messages overtake queued low ones', async t => {
  const { app, url } = await listenApp(t, { sendQueueSize: 100_000, sendQueueBytes: 64 * 1024 * 1024, writeHighWater: 16 * 1024 })
  const reader = await TestClient.connect(`${url}/ws`)
  await reader.request({ op: 'join', room: 'feed' })
  rawSocket(reader).pause()
  const filler = 'x'.repeat(1000)
  for (let i = 0; i < 20_000; i++) app.hub.publish('feed', { n: i, filler }, { priority: Priority.low })
  await new Promise(resolve => setTimeout(resolve, 200)) // the kernel buffers fill; the rest waits in the outbox
  for (let i = 0; i < 5; i++) app.hub.publish('feed', { urgent: i }, { priority: Priority.critical })
  rawSocket(reader).resume()
  const order: string[] = []
  for (let i = 0; i < 20_005; i++) {
    const message = await reader.op('message')
    const data = message.data as { n?: number, urgent?: number }
    order.push(data.urgent === undefined ? `low:${data.n}` : `critical:${data.urgent}`)
  }
  const firstCritical = order.indexOf('critical:0')
  t.ok(firstCritical < 20_000, `critical arrived at position ${firstCritical}, before the last queued low message`)
  t.same(order.filter(o => o.startsWith('critical')), ['critical:0', 'critical:1', 'critical:2', 'critical:3', 'critical:4'])
  const lows = order.filter(o => o.startsWith('low')).map(o => Number(o.slice(4)))
  t.ok(lows.every((n, i) => n === i), 'low messages stay FIFO and none is lost')
  reader.close()
})

t.test('a frame over MAX_PAYLOAD closes the connection with 1009', async t => {
  const { url } = await listenApp(t, { maxPayload: 1024 })
  const client = await TestClient.connect(`${url}/ws`)
  client.send({ op: 'ping', pad: 'x'.repeat(2000) })
  t.equal((await client.closed).code, 1009)
})

t.test('heartbeat terminates a peer that stops answering pings', async t => {
  const { app, url } = await listenApp(t, { heartbeatMs: 100 })
  const silent = await TestClient.connect(`${url}/ws`, { autoPong: false })
  const healthy = await TestClient.connect(`${url}/ws`)
  const { code } = await silent.closed
  t.equal(code, 1006, 'terminated without a close frame')
  t.same(await healthy.request({ op: 'ping' }), { op: 'pong', ref: 1 }, 'a peer that answers stays')
  t.equal(app.hub.stats().connections, 1)
  healthy.close()
})

t.test('a consumer too slow to take a critical message is closed with 4008', async t => {
  const { app, url } = await listenApp(t, { sendQueueSize: 50, writeHighWater: 1024 })
  const slow = await TestClient.connect(`${url}/ws`)
  await slow.request({ op: 'join', room: 'alerts' })
  rawSocket(slow).pause()
  const filler = 'y'.repeat(4000)
  for (let i = 0; i < 5000 && app.outbox.stats.slowConsumerDisconnects === 0; i++) {
    app.hub.publish('alerts', { i, filler }, { priority: Priority.critical })
    if (i % 50 === 49) await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(app.outbox.stats.slowConsumerDisconnects, 1)
  rawSocket(slow).resume()
  const { code, reason } = await slow.closed
  t.equal(code, 4008)
  t.equal(reason, 'slow consumer')
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /ws_slow_consumer_disconnects_total 1/)
  t.match(metrics, /ws_messages_dropped_total\{priority="critical",reason="queue_full"\} 1/)
})

t.test('shutdown: readiness turns 503, queued messages are flushed, then sockets close with 1001', async t => {
  const { app, url } = await listenApp(t, { writeHighWater: 4096, sendQueueSize: 10_000, sendQueueBytes: 16 * 1024 * 1024 })
  const client = await TestClient.connect(`${url}/ws`)
  await client.request({ op: 'join', room: 'last-words' })
  t.equal((await app.inject('/readyz')).statusCode, 200)
  const total = 3000
  for (let i = 1; i <= total; i++) app.hub.publish('last-words', { i, pad: 'z'.repeat(200) }, { priority: Priority.critical })
  const closing = app.close()
  await new Promise(resolve => setImmediate(resolve))
  t.equal(app.lifecycle.draining, true)
  const seqs: number[] = []
  for (let i = 0; i < total; i++) seqs.push((await client.op('message')).seq as number)
  const { code, reason } = await client.closed
  await closing
  t.equal(seqs.length, total, 'every queued critical message arrived')
  t.ok(seqs.every((seq, i) => seq === i + 1), 'in order')
  t.equal(code, 1001)
  t.equal(reason, 'server shutting down')
  t.equal(app.outbox.stats.dropped.closed[Priority.critical], 0, 'nothing was dropped at close')
})

t.test('new upgrades are refused while draining', async t => {
  const { app, url } = await listenApp(t, { shutdownTimeoutMs: 2000 })
  const client = await TestClient.connect(`${url}/ws`)
  const closing = app.close()
  const late = new WebSocket(`${url}/ws`)
  const outcome = await new Promise<string>(resolve => {
    late.once('open', () => resolve('open'))
    late.once('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`))
    late.once('error', error => resolve(`error ${(error as NodeJS.ErrnoException).code ?? error.message}`))
  })
  t.not(outcome, 'open', `refused (${outcome})`)
  await client.closed
  await closing
})

t.test('shutdown lets a running task finish and sends its reply before closing', async t => {
  const { app, url } = await listenApp(t, { tasksModule: fileURLToPath(new URL('../fixtures/tasks.mjs', import.meta.url)) })
  const client = await TestClient.connect(`${url}/ws`)
  await client.op('welcome')
  const reply = client.request({ op: 'task', name: 'slow', data: { ms: 300, value: 'done' } })
  await new Promise(resolve => setTimeout(resolve, 50))
  const closing = app.close()
  t.same(await reply, { op: 'reply', ref: 1, ok: true, data: 'done' }, 'the reply came before the close')
  t.equal((await client.closed).code, 1001)
  await closing
})
