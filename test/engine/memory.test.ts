import { createMemoryEngine } from '../../lib/engine/memory/index.js'
import { engineConformance } from './conformance.js'

engineConformance('memory engine', settings => createMemoryEngine({
  size: settings.historySize,
  ttlMs: settings.historyTtlMs,
  maxBytes: 1 << 30,
  idempotencyTtlMs: settings.idempotencyTtlMs
}))
