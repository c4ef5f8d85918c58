import { createEngine } from '../../lib/engine/create.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'
import { engineConformance } from './conformance.js'

engineConformance('redis engine', settings => createEngine({
  size: settings.historySize,
  ttlMs: settings.historyTtlMs,
  maxBytes: 1 << 30,
  idempotencyTtlMs: settings.idempotencyTtlMs,
  broker: 'redis',
  history: 'redis',
  presence: 'redis',
  redisUrls: [REDIS_URL],
  redisPrefix: redisPrefix(),
  redisTimeoutMs: 5000,
  presenceTtlMs: 60_000,
  positionCheckMs: 5000
}))
