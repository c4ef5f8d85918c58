import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { REDIS_URL } from '../../helpers/redis.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SERVICE_CLIENTS = ['ioredis', 'pg', 'amqplib', '@nats-io']

/** The npm packages that CommonJS loading brought into a fresh process that created an engine with these options. */
async function packagesLoadedBy (options: Record<string, unknown>): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module'
    const { createEngine } = await import('./lib/engine/create.ts')
    const engine = await createEngine(${JSON.stringify(options)})
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter(path => path.includes('/node_modules/'))
    console.log(JSON.stringify([...new Set(loaded.map(path => path.split('/node_modules/').at(-1).split('/')[0]))]))
    await engine.close()
  `
  const { stdout } = await promisify(execFile)(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: ROOT })
  return JSON.parse(stdout) as string[]
}

t.test('the memory engine loads no client of an external service', async t => {
  const loaded = await packagesLoadedBy({ size: 10, ttlMs: 60_000, maxBytes: 1_000_000, idempotencyTtlMs: 60_000, broker: 'memory', history: 'memory', presence: 'memory' })
  t.same(loaded.filter(name => SERVICE_CLIENTS.includes(name)), [])
})

t.test('an engine on Redis loads the service clients', async t => {
  const loaded = await packagesLoadedBy({
    size: 10,
    ttlMs: 60_000,
    maxBytes: 1_000_000,
    idempotencyTtlMs: 60_000,
    broker: 'redis',
    history: 'redis',
    presence: 'redis',
    redisUrls: [REDIS_URL],
    redisPrefix: `create-test-${process.pid}`,
    redisTimeoutMs: 2000,
    presenceTtlMs: 10_000,
    positionCheckMs: 1000
  })
  t.ok(loaded.includes('ioredis'), `loaded: ${loaded.join(', ')}`)
})
