import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import switchboard from './app.js'
import { withoutToken } from './lib/auth/redact.js'
import { ConfigError, loadConfig, parseTrustProxy } from './lib/config.js'
import { replyNotFound } from './plugins/http-errors.js'

if (existsSync('.env')) process.loadEnvFile('.env')

let config
try {
  config = loadConfig(process.env)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`switchboard: invalid configuration: ${error.message}`)
  process.exit(1)
}

const app = Fastify({
  logger: {
    level: config.logLevel,
    // Connection tokens travel in the upgrade URL or headers: neither reaches the log.
    redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]'],
    serializers: {
      req: request => ({ method: request.method, url: withoutToken(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort })
    }
  },
  // Bounds slow HTTP clients: a request's headers and body, then an idle keep-alive socket. No
  // connectionTimeout: its socket timer outlives the upgrade, and Node touches it on every write.
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  // The shutdown budget covers draining; lingering keep-alive HTTP sockets must not add to it.
  forceCloseConnections: 'idle',
  trustProxy: parseTrustProxy(config.trustProxy)
})

// The app runs at the root here, so the root's 404s answer in its {code, message} shape too.
app.setNotFoundHandler(replyNotFound)
app.register(switchboard, config)

closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger: app.log }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (error) {
  app.log.fatal({ err: error }, 'could not start')
  process.exit(1)
}
