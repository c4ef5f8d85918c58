import { ComposedEngine } from '../composed.js'
import { MemoryBroker } from './broker.js'
import { MemoryHistory, type MemoryHistoryOptions } from './history.js'
import { LocalNodeRegistry } from './nodes.js'
import { MemoryPresence } from './presence.js'

/** The embedded default: one node, everything in process memory, no external service. */
export function createMemoryEngine (options: MemoryHistoryOptions): ComposedEngine {
  return new ComposedEngine(new MemoryHistory(options), new MemoryBroker(), new MemoryPresence(), new LocalNodeRegistry())
}
