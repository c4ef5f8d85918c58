import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { ConnectionEvents } from '../lib/node/connection-events.js'
import { CloseCode } from '../lib/node/session.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Readiness: draining turns true when shutdown starts; /readyz and new upgrades then answer 503. */
    lifecycle: { draining: boolean }
  }
}


export interface LifecyclePluginOptions {
  config: Pick<Config, 'shutdownTimeoutMs'>
}

/**
 * Graceful shutdown, in the order that loses nothing: refuse new work, let running tasks finish (their
 * replies are queued), let every outbox reach its socket, then close the sockets with 1001.
 * Everything shares one SHUTDOWN_TIMEOUT_MS budget; stragglers are terminated when it runs out.
 */
export default fp<LifecyclePluginOptions>(async function lifecycle (fastify, opts) {
  if (opts.config === undefined) throw new Error('lifecycle plugin: options.config is required')
  const state = { draining: false }
  fastify.decorate('lifecycle', state)
  const { hub, outbox, workerPool } = fastify
  const events = new ConnectionEvents(fastify.log)
  const endRefusedUpgrade = (request: IncomingMessage, socket: Duplex): void => {
    events.info('upgrade_refused', { ip: request.socket.remoteAddress, reason: 'shutting_down' }, 'refused a WebSocket upgrade while draining')
    socket.end()
  }

  fastify.addHook('preClose', async () => {
    state.draining = true
    // While closing, Fastify answers an upgrade with 503 synchronously but leaves its socket open, and
    // server.close() would wait for that socket for as long as the client keeps it: end it after the answer.
    fastify.server.on('upgrade', endRefusedUpgrade)
    const deadline = Date.now() + opts.config.shutdownTimeoutMs
    const remaining = (): number => Math.max(0, deadline - Date.now())
    const budget = (): Promise<void> => sleep(remaining(), undefined, { ref: false })

    await workerPool.drain(remaining())
    await Promise.race([outbox.whenAllEmpty(), budget()])
    const closing = Array.from(hub.connections(), connection => connection.close(CloseCode.goingAway, 'server shutting down'))
    await Promise.race([Promise.all(closing), budget()])
    const stragglers = Array.from(hub.connections())
    if (stragglers.length > 0) {
      fastify.log.warn({ open: stragglers.length }, 'shutdown timeout reached; terminating the connections left')
      for (const connection of stragglers) connection.terminate()
    }
  })
  fastify.addHook('onClose', async () => {
    fastify.server.off('upgrade', endRefusedUpgrade)
  })
}, { name: 'lifecycle', fastify: '5.x', dependencies: ['hub', 'outbox', 'worker-pool'] })
