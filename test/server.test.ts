import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SignJWT } from 'jose'
import t from 'tap'
import WebSocket from 'ws'
import { TestClient } from './helpers/app.js'
import { listening, startProcess as start } from './helpers/node-process.js'
import { freePort } from './helpers/service-process.js'

t.test('a bad environment value stops the boot, naming the variable', async t => {
  const server = start({ PORT: 'http' })
  t.equal(await server.exited, 1)
  t.match(server.output(), /invalid configuration: PORT must be an integer from 0 to 65535 \(got "http"\)/)
})

t.test('a Redis that cannot be reached stops the boot, naming REDIS_URL; so does a cluster broker with node-local history', async t => {
  const port = await freePort()
  const unreachable = start({ PORT: '0', BROKER: 'redis', REDIS_URL: `redis://127.0.0.1:${port}` })
  t.equal(await unreachable.exited, 1)
  t.match(unreachable.output(), new RegExp(`cannot connect to Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URL\\)`))
  const mixed = start({ PORT: '0', BROKER: 'redis', HISTORY: 'memory' })
  t.equal(await mixed.exited, 1)
  t.match(mixed.output(), /HISTORY=memory cannot be used with BROKER=redis/)
  const unknown = start({ PORT: '0', BROKER: 'kafka' })
  t.equal(await unknown.exited, 1)
  t.match(unknown.output(), /BROKER must be one of memory, redis, nats, amqp \(got "kafka"\)/)
  const noHistory = start({ PORT: '0', BROKER: 'nats' })
  t.equal(await noHistory.exited, 1)
  t.match(noHistory.output(), /HISTORY=memory cannot be used with BROKER=nats: .*set HISTORY=redis or HISTORY=postgres/)
})

t.test('npm start entry: listens, serves, and exits 0 on SIGTERM after a graceful close', async t => {
  const server = start({ PORT: '0', LOG_LEVEL: 'info' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = await listening(server)
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws`)
  const expected = createHash('sha256').update(JSON.stringify('abc')).digest('hex')
  t.same(await client.request({ op: 'task', name: 'sha256', data: 'abc' }), { op: 'reply', ref: 1, ok: true, data: expected })
  server.child.kill('SIGTERM')
  t.equal((await client.closed).code, 1001)
  t.equal(await server.exited, 0)
  t.match(server.output(), /shutting down/)
})

t.test('package.json engines admit no Node.js older than what server.ts uses (process.loadEnvFile: 20.12)', async t => {
  const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
  const match = /^>=(\d+)\.(\d+)/.exec(engines.node)
  t.ok(match, `engines.node is a lower bound (${engines.node})`)
  const [major, minor] = [Number(match?.[1]), Number(match?.[2])]
  t.ok(major > 20 || (major === 20 && minor >= 12), `${engines.node} requires at least 20.12`)
  t.match(readFileSync(new URL('../server.ts', import.meta.url), 'utf8'), /process\.loadEnvFile/, 'server.ts still reads .env with process.loadEnvFile')
})

t.test('connection tokens never reach the log, whichever way they came', async t => {
  const secret = 'log-redaction-secret-of-32-bytes!'
  const server = start({ PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: secret })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = await listening(server)
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  const viaQuery = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${token}`)
  await viaQuery.op('welcome')
  const viaProtocol = new TestClient(new WebSocket(`ws://127.0.0.1:${port}/ws`, ['switchboard', token]))
  await viaProtocol.op('welcome')
  const viaHeader = await TestClient.connect(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } })
  await viaHeader.op('welcome')
  const refused = await new Promise<number>(resolve => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}x`)
    ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0))
    ws.once('error', () => {})
  })
  t.equal(refused, 401)
  for (const client of [viaQuery, viaProtocol, viaHeader]) client.close()
  server.child.kill('SIGTERM')
  await server.exited
  const output = server.output()
  t.match(output, /token=\[redacted\]/, 'the URL is logged without the token')
  t.notOk(output.includes(token.split('.')[2] as string), 'no token signature anywhere in the log')
  t.match(output, /no_token|bad_token|upgrade_refused/, 'the refusal itself is logged')
})
