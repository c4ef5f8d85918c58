import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import switchboard, { type SwitchboardOptions } from '../../app.js'
import { assertIdle } from '../helpers/app.js'
import { Switchboard, type WebSocketConstructor } from '../../lib/client/index.js'
import { Priority } from '../../lib/protocol/priority.js'

/** A listening app on `port` (0: any), and the instance inside it, to publish from and to cut connections. */
async function start (t: Test, options: SwitchboardOptions = {}, port = 0): Promise<{ root: FastifyInstance, app: FastifyInstance, url: string }> {
  const root = Fastify({ logger: false })
  const registered = { env: {}, workers: 1, ...options }
  let app: FastifyInstance | undefined
  root.addHook('onRegister', (instance, opts) => { if (opts === registered) app = instance })
  await root.register(switchboard, registered)
  await root.listen({ host: '127.0.0.1', port })
  t.teardown(() => root.close())
  t.teardown(() => assertIdle(app as FastifyInstance))
  return { root, app: app as FastifyInstance, url: `ws://127.0.0.1:${(root.server.address() as AddressInfo).port}/ws` }
}

function connect (t: Test, url: string): Switchboard {
  const sb = new Switchboard(url, { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelay: 5, maxReconnectDelay: 50 })
  t.teardown(() => sb.disconnect())
  sb.connect()
  return sb
}

t.test('20 cuts during 10k messages: the app sees every seq exactly once, in order', async t => {
  const total = 10_000
  const { app, url } = await start(t, { historySize: total, recoveryMax: total, sendQueueSize: total })
  const sb = connect(t, url)
  const room = sb.room<number>('stream')
  const seqs: number[] = []
  let done: () => void = () => {}
  const finished = new Promise<void>(resolve => { done = resolve })
  room.on('message', m => {
    seqs.push(m.seq)
    if (m.data !== m.seq) throw new Error(`seq ${m.seq} carried ${m.data}`)
    if (m.seq === total) done()
  })
  let recoveries = 0
  room.on('recovered', () => { recoveries++ })
  await sb.ready()
  while (room.position === undefined) await new Promise(resolve => setImmediate(resolve))

  const cutsAt = new Set(Array.from({ length: 20 }, (_, i) => Math.floor((i + 0.5) * total / 20 + (Math.random() - 0.5) * 200)))
  let cuts = 0
  for (let seq = 1; seq <= total; seq++) {
    await app.hub.publish('stream', seq, { priority: Priority.normal })
    if (cutsAt.has(seq)) {
      // Cut only once the client saw the previous rejoin recover, so every cut interrupts a live stream
      // (a cut while the rejoin's reply is still on its way would merge two cuts into one rejoin).
      while (recoveries < cuts) await new Promise(resolve => setTimeout(resolve, 1))
      for (const connection of app.hub.connections()) connection.terminate()
      cuts++
    }
    if (seq % 50 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  await finished
  t.equal(seqs.length, total, 'every message once')
  t.ok(seqs.every((seq, i) => seq === i + 1), 'in order')
  while (recoveries < cutsAt.size) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(recoveries, cutsAt.size, 'every rejoin recovered')
})

t.test('a server restart surfaces reset, and the room goes on from the new stream', async t => {
  const first = await start(t)
  const port = Number(new URL(first.url).port)
  const sb = connect(t, first.url)
  const room = sb.room<string>('r')
  const resets: string[] = []
  room.on('reset', r => resets.push(r.reason))
  const messages: string[] = []
  room.on('message', m => messages.push(m.data))
  await sb.ready()
  t.same(await room.publish('before'), { seq: 1 })
  await first.root.close()
  const second = await start(t, {}, port)
  const reset = new Promise<void>(resolve => room.on('reset', () => resolve()))
  await reset
  t.same(resets, ['epoch_changed'])
  await second.app.hub.publish('r', 'after', { priority: Priority.normal })
  while (messages.length < 2) await new Promise(resolve => setTimeout(resolve, 5))
  t.same(messages, ['before', 'after'])
  // The second server started after the client: its idle check would otherwise run before the client's teardown.
  sb.disconnect()
})

t.test('with getToken, the client refreshes its token before exp and keeps its connection', async t => {
  const secret = 'client-refresh-secret-of-32-bytes'
  const { url } = await start(t, { jwtSecret: secret, jwtClockToleranceS: 0 })
  let issued = 0
  const getToken = async (): Promise<string> => {
    issued++
    return new SignJWT({ sub: 'frank' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 11).sign(new TextEncoder().encode(secret))
  }
  const sb = new Switchboard(url, { WebSocket: WebSocket as unknown as WebSocketConstructor, getToken, minReconnectDelay: 5 })
  t.teardown(() => sb.disconnect())
  const disconnects: number[] = []
  sb.on('disconnected', d => disconnects.push(d.code))
  sb.connect()
  await sb.ready()
  const client = sb.client
  // The first token expires 11 s in; the refresh goes 10 s before that.
  await new Promise(resolve => setTimeout(resolve, 12_000))
  t.ok(issued >= 2, `${issued} tokens issued`)
  t.same(disconnects, [], 'never closed with 4001')
  t.equal(sb.client, client, 'the same connection')
  t.match(await sb.request({ op: 'ping' }), { op: 'pong' })
})
