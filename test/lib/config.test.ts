import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError, SETTINGS, loadConfig, parseAllowedOrigins, type SettingName } from '../../lib/config.js'

t.test('defaults when nothing is set', async t => {
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.sendQueueSize, 1024)
  t.equal(config.sendQueueBytes, 1024 * 1024)
  t.equal(config.maxPayload, 65536)
  t.equal(config.allowClientBroadcast, false)
  t.equal(config.defaultTask, 'echo')
  t.ok(config.workers >= 1)
})

t.test('environment variables are parsed to their types', async t => {
  const config = loadConfig({ PORT: ' 8080 ', ALLOW_CLIENT_BROADCAST: 'true', ALLOWED_ORIGINS: 'https://a.example, https://b.example', LOG_LEVEL: 'warn', HEARTBEAT_MS: '' })
  t.equal(config.port, 8080)
  t.equal(config.allowClientBroadcast, true)
  t.equal(config.logLevel, 'warn')
  t.equal(config.heartbeatMs, 25000, 'an empty variable means the default')
  t.same([...parseAllowedOrigins(config.allowedOrigins)!], ['https://a.example', 'https://b.example'])
  t.equal(parseAllowedOrigins(''), undefined)
  t.equal(loadConfig({ ALLOW_CLIENT_BROADCAST: '0' }).allowClientBroadcast, false)
})

t.test('options override the environment', async t => {
  t.equal(loadConfig({ PORT: '8080' }, { port: 9090 }).port, 9090)
})

t.test('a bad value fails naming the variable and the expected form', async t => {
  t.throws(() => loadConfig({ PORT: 'eighty' }), new ConfigError('PORT must be an integer from 0 to 65535 (got "eighty")'))
  t.throws(() => loadConfig({ PORT: '70000' }), { message: /^PORT must be an integer from 0 to 65535/ })
  t.throws(() => loadConfig({ SEND_QUEUE_SIZE: '1.5' }), { message: /^SEND_QUEUE_SIZE must be an integer/ })
  t.throws(() => loadConfig({ ALLOW_CLIENT_BROADCAST: 'yes' }), { message: /^ALLOW_CLIENT_BROADCAST must be true or false/ })
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), { message: /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/ })
  t.throws(() => loadConfig({ DEFAULT_TASK: 'x'.repeat(65) }), { message: /^DEFAULT_TASK must be a string of 1 to 64 characters/ })
  t.throws(() => loadConfig({}, { sendQueueSize: 0 }), { message: /^option sendQueueSize must be an integer from 1/ })
  t.throws(() => loadConfig({}, { sendQueueSize: '5' as unknown as number }), { message: /^option sendQueueSize/ })
  t.throws(() => loadConfig({}, { colour: 'red' } as never), { message: 'unknown option colour' })
})

t.test('.env.example lists every variable with its default', async t => {
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const { env, schema } = SETTINGS[name]
    if (name === 'workers') {
      t.match(example, new RegExp(`^# ?${env}=`, 'm'), `${env} is listed (its default depends on the machine)`)
    } else {
      t.match(example, new RegExp(`^${env}=${String(schema.default).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `${env} with its default`)
    }
    t.match(readme, new RegExp(`\\| \`${env}\` \\|`), `${env} is in the README table`)
  }
})
