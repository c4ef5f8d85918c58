import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import t from 'tap'
import switchboard from '../app.js'
import { TestClient } from './helpers/app.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function activeHandles (): number {
  return (process as unknown as { _getActiveHandles: () => unknown[] })._getActiveHandles().length
}

async function cycle (withClient: boolean): Promise<void> {
  const host = Fastify({ logger: false })
  await host.register(switchboard, { env: {}, workers: 1, shutdownTimeoutMs: 1000 })
  await host.listen({ host: '127.0.0.1', port: 0 })
  if (withClient) {
    const client = await TestClient.connect(`ws://127.0.0.1:${(host.server.address() as { port: number }).port}/ws`)
    await client.request({ op: 'join', room: 'r' })
    await client.request({ op: 'publish', room: 'r', data: 1 })
    const closing = host.close()
    await client.closed
    await closing
    return
  }
  await host.close()
}

t.test('registering and closing the app 100 times leaves no handle behind and does not grow the heap', async t => {
  await cycle(true)
  await cycle(false)
  gc()
  const handles = activeHandles()
  const heap = process.memoryUsage().heapUsed
  for (let i = 0; i < 100; i++) await cycle(i % 10 === 0)
  await new Promise(resolve => setImmediate(resolve))
  gc()
  t.ok(activeHandles() <= handles, `${activeHandles()} active handles after, ${handles} before`)
  const growth = process.memoryUsage().heapUsed - heap
  t.ok(growth < 8 * 1024 * 1024, `the heap grew ${(growth / 1024 / 1024).toFixed(1)} MiB over 100 cycles`)
})
