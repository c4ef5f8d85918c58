import type { NodeInfo, NodeRegistry } from '../types.js'
import { run, type Shard } from './shards.js'

/**
 * Live nodes in Redis (on the first shard): a hash of each node's latest heartbeat and a sorted set of
 * when each one expires. A node that stops beating is dropped from the list when it expires.
 */
export class RedisNodeRegistry implements NodeRegistry {
  private self: (() => NodeInfo) | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly infoKey: string
  private readonly expiryKey: string

  /** As for presence: kept 2/3 of the ttl past each heartbeat, beating every third, so a dead node is gone within the ttl. */
  private readonly lifetimeMs: number

  constructor (private readonly shard: Shard, prefix: string, private readonly ttlMs: number) {
    this.lifetimeMs = Math.floor(ttlMs * 2 / 3)
    this.infoKey = `${prefix}nodes`
    this.expiryKey = `${prefix}nodes:x`
  }

  announce (self: () => NodeInfo): void {
    this.self = self
    void this.beat()
    this.timer = setInterval(() => { void this.beat() }, Math.max(100, Math.floor(this.ttlMs / 3)))
    this.timer.unref()
  }

  async list (): Promise<NodeInfo[]> {
    const { command } = this.shard
    const now = Date.now()
    const expired = await run(this.shard, () => command.zrangebyscore(this.expiryKey, '-inf', now))
    if (expired.length > 0) await run(this.shard, () => command.multi().zrem(this.expiryKey, ...expired).hdel(this.infoKey, ...expired).exec())
    const live = await run(this.shard, () => command.zrangebyscore(this.expiryKey, now, '+inf'))
    if (live.length === 0) return []
    const infos = await run(this.shard, () => command.hmget(this.infoKey, ...live))
    return infos.filter((info): info is string => info !== null).map(info => JSON.parse(info) as NodeInfo)
      .sort((a, b) => a.id < b.id ? -1 : 1)
  }

  /** A node that shuts down leaves the list at once instead of when it expires. */
  async close (): Promise<void> {
    clearInterval(this.timer)
    const info = this.self?.()
    this.self = undefined
    if (info === undefined || this.shard.command.status !== 'ready') return
    await run(this.shard, () => this.shard.command.multi().zrem(this.expiryKey, info.id).hdel(this.infoKey, info.id).exec()).catch(() => {})
  }

  private async beat (): Promise<void> {
    const info = this.self?.()
    if (info === undefined || this.shard.command.status !== 'ready') return
    await run(this.shard, () => this.shard.command.multi()
      .hset(this.infoKey, info.id, JSON.stringify(info))
      .zadd(this.expiryKey, Date.now() + this.lifetimeMs, info.id)
      .exec()).catch(() => {})
  }
}
