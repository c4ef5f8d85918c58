import type { FastifyPluginAsync } from 'fastify'
import { parseApiKeys } from './lib/auth/bearer.js'
import { ConfigError, SETTINGS, loadConfig, type ConfigOverrides, type SettingName } from './lib/config.js'
import httpErrorsPlugin from './plugins/http-errors.js'
import enginePlugin from './plugins/engine.js'
import hubPlugin from './plugins/hub.js'
import lifecyclePlugin from './plugins/lifecycle.js'
import metricsPlugin from './plugins/metrics.js'
import outboxPlugin from './plugins/outbox.js'
import pressurePlugin from './plugins/pressure.js'
import roomPolicyPlugin from './plugins/room-policy.js'
import websocketPlugin from './plugins/websocket.js'
import workerPoolPlugin from './plugins/worker-pool.js'
import apiRoutes from './routes/api.js'
import demoRoutes from './routes/demo.js'
import healthRoutes from './routes/health.js'
import taskRoutes from './routes/tasks.js'
import wsRoute from './routes/ws.js'

export interface SwitchboardOptions extends ConfigOverrides {
  /** Where settings not given as options are read from; process.env by default. */
  env?: NodeJS.ProcessEnv
}

/** Options that Fastify itself reads from every register() call; they are not ours to validate. */
const FASTIFY_REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

function settingOverrides (opts: Record<string, unknown>): ConfigOverrides {
  const overrides: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(opts)) {
    if (Object.hasOwn(SETTINGS, key)) overrides[key as SettingName] = value
    else if (key !== 'env' && !FASTIFY_REGISTER_OPTIONS.has(key)) throw new ConfigError(`unknown option ${key}`)
  }
  return overrides as ConfigOverrides
}

/**
 * The whole Switchboard app as one encapsulated plugin: register it with a prefix into any Fastify
 * server. Options override environment variables. It never listens; server.ts does.
 */
const switchboard: FastifyPluginAsync<SwitchboardOptions> = async (fastify, opts) => {
  const config = loadConfig(opts.env ?? process.env, settingOverrides(opts as Record<string, unknown>))

  await fastify.register(httpErrorsPlugin)
  await fastify.register(websocketPlugin, { config })
  await fastify.register(roomPolicyPlugin, { config })
  await fastify.register(enginePlugin, { config })
  await fastify.register(hubPlugin, { config })
  await fastify.register(outboxPlugin, { config })
  await fastify.register(workerPoolPlugin, { config })
  await fastify.register(metricsPlugin)
  await fastify.register(lifecyclePlugin, { config })
  await fastify.register(pressurePlugin, { config })

  await fastify.register(healthRoutes)
  await fastify.register(wsRoute, { config })
  if (config.demo) await fastify.register(demoRoutes)
  const apiKeys = parseApiKeys(config.apiKey, config.apiKeys)
  if (apiKeys.length > 0) {
    await fastify.register(apiRoutes, { prefix: '/api', apiKeys })
    await fastify.register(taskRoutes, { prefix: '/api', apiKeys })
  }
}

export default switchboard
export { loadConfig, ConfigError, SETTINGS } from './lib/config.js'
export type { Config, ConfigOverrides } from './lib/config.js'
