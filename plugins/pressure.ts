import underPressure from '@fastify/under-pressure'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'

export interface PressurePluginOptions {
  config: Pick<Config, 'maxEventLoopDelayMs' | 'maxHeapUsedBytes' | 'maxRssBytes'>
}

/**
 * Watches event-loop delay, heap and RSS (@fastify/under-pressure, sampled every 500 ms). Under
 * pressure nothing is refused by default: only routes that opt in with `shedUnderPressure` (new
 * upgrades, /readyz) answer 503, so established connections and /metrics keep being served.
 */
export default fp<PressurePluginOptions>(async function pressure (fastify, opts) {
  if (opts.config === undefined) throw new Error('pressure plugin: options.config is required')
  await fastify.register(underPressure, {
    sampleInterval: 500,
    maxEventLoopDelay: opts.config.maxEventLoopDelayMs,
    maxHeapUsedBytes: opts.config.maxHeapUsedBytes,
    maxRssBytes: opts.config.maxRssBytes,
    pressureHandler: () => undefined
  })
}, { name: 'pressure', fastify: '5.x' })

/** Route config for what is refused under pressure: `{ config: { pressureHandler: shedUnderPressure } }`. */
export function shedUnderPressure (_request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined): FastifyReply {
  return reply.code(503).header('retry-after', '10').send({ code: 'under_pressure', message: `the server is under pressure (${type}${value === undefined ? '' : ` ${Math.round(value)}`}): try again later` })
}
