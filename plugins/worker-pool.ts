import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { PiscinaWorkerPool } from '../lib/tasks/runner.js'
import type { WorkerPool } from '../lib/tasks/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    workerPool: WorkerPool
  }
}

export interface WorkerPoolPluginOptions {
  config: Config
}

/** Decorates `fastify.workerPool`. Draining is the lifecycle plugin's job; onClose only releases the threads. */
const workerPool: FastifyPluginAsync<WorkerPoolPluginOptions> = async (fastify, opts) => {
  const config: unknown = opts.config
  if (typeof config !== 'object' || config === null) {
    throw new TypeError('worker-pool plugin: options.config is required (the Config that loadConfig returns)')
  }
  const runner = await PiscinaWorkerPool.create(config as Config, {
    onError: error => fastify.log.error({ err: error }, 'worker pool error')
  })
  fastify.decorate('workerPool', runner)
  fastify.addHook('onClose', async () => {
    await runner.close()
  })
}

export default fp(workerPool, { name: 'worker-pool', fastify: '5.x' })
