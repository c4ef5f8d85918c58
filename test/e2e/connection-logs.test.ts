import type { AddressInfo, Socket } from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import switchboard, { type SwitchboardOptions } from '../../app.js'
import { Priority } from '../../lib/protocol/priority.js'
import { TestClient } from '../helpers/app.js'

type LogLine = Record<string, unknown> & { level: number, msg: string }

/** A listening app whose pino log lines are collected, so a test can wait for the one it expects. */
async function loggedApp (t: Test, options: SwitchboardOptions): Promise<{ url: string, app: FastifyInstance, logged: (event: string) => Promise<LogLine> }> {
  const lines: LogLine[] = []
  const waiters: { event: string, resolve: (line: LogLine) => void }[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const text of String(chunk).split('\n')) {
        if (text === '') continue
        const line = JSON.parse(text) as LogLine
        lines.push(line)
        for (const waiter of waiters.filter(w => w.event === line.event)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(line)
        }
      }
      done()
    }
  })
  const root = Fastify({ logger: { level: 'info', stream } })
  let app: FastifyInstance | undefined
  const registered = { env: {}, workers: 1, ...options }
  root.addHook('onRegister', (instance, opts) => { if (opts === registered) app = instance })
  await root.register(switchboard, registered)
  await root.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => root.close())
  const logged = (event: string): Promise<LogLine> => {
    const found = lines.find(line => line.event === event)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise(resolve => waiters.push({ event, resolve }))
  }
  return { url: `ws://127.0.0.1:${(root.server.address() as AddressInfo).port}`, app: app as FastifyInstance, logged }
}

const WARN = 40
const INFO = 30

t.test('a slow consumer closed with 4008 is logged with its client id', async t => {
  const { url, app, logged } = await loggedApp(t, { sendQueueSize: 20, writeHighWater: 1024 })
  const slow = await TestClient.connect(`${url}/ws`)
  const { client } = await slow.op('welcome')
  await slow.request({ op: 'join', room: 'r' })
  const stream = (slow.ws as unknown as { _socket: Socket })._socket
  stream.pause()
  for (let i = 0; i < 5000 && app.outbox.stats.slowConsumerDisconnects === 0; i++) {
    app.hub.publish('r', { i, pad: 'x'.repeat(4000) }, { priority: Priority.critical })
    if (i % 20 === 19) await new Promise(resolve => setImmediate(resolve))
  }
  t.match(await logged('slow_consumer'), { level: WARN, client, msg: /4008/ })
  stream.resume()
  t.equal((await slow.closed).code, 4008)
})

t.test('a flooder closed with 1008 is logged', async t => {
  const { url, logged } = await loggedApp(t, { rateLimitPerSec: 10, rateLimitBurst: 10 })
  const flooder = await TestClient.connect(`${url}/ws`)
  const { client } = await flooder.op('welcome')
  for (let i = 0; i < 100; i++) flooder.send({ op: 'ping' })
  t.equal((await flooder.closed).code, 1008)
  t.match(await logged('flood'), { level: WARN, client, msg: /1008/ })
})

t.test('a peer terminated for a missed pong is logged', async t => {
  const { url, logged } = await loggedApp(t, { heartbeatMs: 100 })
  const silent = await TestClient.connect(`${url}/ws`, { autoPong: false })
  const { client } = await silent.op('welcome')
  t.match(await logged('heartbeat_timeout'), { level: INFO, client })
})

t.test('refused upgrades are logged with the reason, a flood of them within the rate limit', async t => {
  const { url, logged } = await loggedApp(t, { allowedOrigins: 'https://good.example' })
  const attempts = Array.from({ length: 30 }, () => new Promise<number>(resolve => {
    const ws = new WebSocket(`${url}/ws`, { origin: 'https://evil.example' })
    ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0))
    ws.once('error', () => resolve(0))
  }))
  t.same(new Set(await Promise.all(attempts)), new Set([403]))
  t.match(await logged('upgrade_refused'), { level: WARN, reason: 'origin', origin: 'https://evil.example' })
})

t.test('an upgrade refused while draining is logged', async t => {
  const { url, app, logged } = await loggedApp(t, { shutdownTimeoutMs: 2000 })
  const client = await TestClient.connect(`${url}/ws`)
  await client.op('welcome')
  const closing = app.close()
  const late = new WebSocket(`${url}/ws`)
  late.on('error', () => {})
  t.match(await logged('upgrade_refused'), { level: INFO, reason: 'shutting_down' })
  await closing
})
