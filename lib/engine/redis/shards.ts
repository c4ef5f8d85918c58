import { Redis, type RedisOptions } from 'ioredis'
import { BrokerStats } from '../broker-wire.js'
import { EngineUnavailableError } from '../errors.js'
import { APPEND, POSITION, PRESENCE_CHANGE, PRESENCE_PAGE, PRESENCE_REFRESH, READ, RECOVER } from './scripts.js'

/** The scripts as ioredis commands (EVALSHA, falling back to EVAL once per connection). */
export interface ScriptCommands {
  sbAppend (...args: (string | number)[]): Promise<[string, number, number]>
  sbPosition (...args: (string | number)[]): Promise<[string, number]>
  sbRead (...args: (string | number)[]): Promise<[string, number, string[]]>
  sbRecover (...args: (string | number)[]): Promise<[string, number, string, string[]?]>
  sbPresenceChange (...args: (string | number)[]): Promise<null>
  sbPresencePage (...args: (string | number)[]): Promise<[number, string[], number, number]>
  sbPresenceRefresh (...args: (string | number)[]): Promise<[number, string[]]>
}

export type CommandClient = Redis & ScriptCommands

/** One Redis instance: a connection for commands and one for pub/sub, whatever the number of rooms. */
export interface Shard {
  readonly index: number
  /** The address without credentials, for logs and metrics. */
  readonly name: string
  readonly command: CommandClient
  readonly subscriber: Redis
  readonly stats: BrokerStats
  /** REDIS_TIMEOUT_MS: how long a caller waits for any command of this shard. */
  readonly timeoutMs: number
}

export interface ShardOptions {
  /** Rejects a command that got no answer in this time (a Redis that hangs). */
  commandTimeoutMs: number
}

const SCRIPTS = {
  sbAppend: { lua: APPEND, numberOfKeys: 3 },
  sbPosition: { lua: POSITION, numberOfKeys: 2 },
  sbRead: { lua: READ, numberOfKeys: 2 },
  sbRecover: { lua: RECOVER, numberOfKeys: 2 },
  sbPresenceChange: { lua: PRESENCE_CHANGE, numberOfKeys: 4 },
  sbPresencePage: { lua: PRESENCE_PAGE, numberOfKeys: 4 },
  sbPresenceRefresh: { lua: PRESENCE_REFRESH, numberOfKeys: 4 }
}

function nameOf (url: string): string {
  const parsed = new URL(url)
  return `${parsed.hostname}:${parsed.port === '' ? '6379' : parsed.port}${parsed.pathname === '/' ? '' : parsed.pathname}`
}

/**
 * Commands fail at once while the connection is down, and a command in flight when it drops is
 * rejected rather than sent again: a publish is either acknowledged or answered `unavailable`, never
 * applied twice behind the caller's back (a publish with an id can be retried safely).
 */
function connectionOptions (options: ShardOptions): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs,
    retryStrategy: attempt => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    // The broker resubscribes itself after a reconnect, then checks what it missed.
    autoResubscribe: false
  }
}

export function openShard (url: string, index: number, options: ShardOptions): Shard {
  // Commands issued in one turn of the event loop go out in one write: under load, one syscall per batch, not per publish.
  const command = new Redis(url, { ...connectionOptions(options), scripts: SCRIPTS, enableAutoPipelining: true }) as CommandClient
  // The subscriber never answers slowly on purpose; SUBSCRIBE waits for Redis to confirm it.
  const subscriber = new Redis(url, { ...connectionOptions(options), commandTimeout: undefined })
  const stats = new BrokerStats()
  // ioredis emits 'error' for every failed reconnect attempt; the engine reports its state instead.
  command.on('error', () => {})
  subscriber.on('error', () => {})
  return { index, name: nameOf(url), command, subscriber, stats, timeoutMs: options.commandTimeoutMs }
}

/** FNV-1a over UTF-16 code units: cheap, and spreads short room names well enough for the ring. */
function hash32 (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  // A final avalanche, so that names differing in their last character land far apart.
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  return hash >>> 0
}

const POINTS_PER_SHARD = 128

/**
 * Consistent hashing of rooms onto shards. Each shard owns points on a ring named after its address,
 * so adding a shard moves only the rooms that land on its new points (about 1/n of them).
 */
export class ShardRing {
  private readonly points: Uint32Array
  private readonly owners: Uint16Array

  constructor (names: readonly string[]) {
    const all: [number, number][] = []
    names.forEach((name, shard) => {
      for (let i = 0; i < POINTS_PER_SHARD; i++) all.push([hash32(`${name}#${i}`), shard])
    })
    all.sort((a, b) => a[0] - b[0])
    this.points = Uint32Array.from(all, ([point]) => point)
    this.owners = Uint16Array.from(all, ([, shard]) => shard)
  }

  shardOf (room: string): number {
    if (this.owners.length === POINTS_PER_SHARD) return 0
    const key = hash32(room)
    const points = this.points
    let low = 0
    let high = points.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((points[middle] as number) < key) low = middle + 1
      else high = middle
    }
    return this.owners[low === points.length ? 0 : low] as number
  }
}

/** The shards of one engine and the key names of a room. */
export class Shards {
  readonly list: readonly Shard[]
  private readonly ring: ShardRing

  constructor (urls: readonly string[], readonly prefix: string, options: ShardOptions) {
    this.list = urls.map((url, index) => openShard(url, index, options))
    this.ring = new ShardRing(this.list.map(shard => shard.name))
  }

  of (room: string): Shard {
    return this.list[this.ring.shardOf(room)] as Shard
  }

  /** Where the node registry and global broadcasts live: the lowest name, whatever order REDIS_URL lists them in. */
  get first (): Shard {
    return this.list.reduce((lowest, shard) => shard.name < lowest.name ? shard : lowest)
  }

  key (room: string, part: string): string {
    return `${this.prefix}{${room}}:${part}`
  }

  channel (room: string): string {
    return `${this.prefix}room:${room}`
  }

  /** A room's presence events, apart from its messages: only nodes with a watcher in the room subscribe. */
  presenceChannel (room: string): string {
    return `${this.prefix}presence:${room}`
  }

  get broadcastChannel (): string {
    return `${this.prefix}broadcast`
  }

  /** Every connection is up. */
  ready (): boolean {
    return this.list.every(shard => shard.command.status === 'ready' && shard.subscriber.status === 'ready')
  }

  /** Connects everything, or fails naming the shard that could not be reached. */
  async connect (): Promise<void> {
    await Promise.all(this.list.flatMap(shard => [shard.command, shard.subscriber].map(async client => {
      try {
        await client.connect()
      } catch (error) {
        client.disconnect()
        throw new EngineUnavailableError(`cannot connect to Redis at ${shard.name} (REDIS_URL): ${(error as Error).message}`, { cause: error })
      }
    })))
  }

  async close (): Promise<void> {
    await Promise.all(this.list.flatMap(shard => [shard.command, shard.subscriber].map(async client => {
      if (client.status === 'ready') await client.quit().catch(() => { client.disconnect() })
      else client.disconnect()
    })))
  }
}

/**
 * Settles with `work`, or rejects after `ms`. ioredis's commandTimeout starts when a command is written,
 * and with auto-pipelining a command waits unwritten while the previous pipeline is unanswered: behind
 * a stalled Redis, a caller would wait up to twice the timeout and could then be told it succeeded.
 */
function bounded<T> (work: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no answer within ${ms} ms (REDIS_TIMEOUT_MS)`)) }, ms)
    work.then(value => { clearTimeout(timer); resolve(value) }, (error: unknown) => { clearTimeout(timer); reject(error) })
  })
}

/**
 * Runs a command of a shard, answered within REDIS_TIMEOUT_MS; any failure (down, timed out, refused)
 * is the engine being unavailable. A command that timed out may still run when Redis answers again,
 * which is why publishes carry ids that a retry can repeat.
 */
export async function run<T> (shard: Shard, command: () => Promise<T>): Promise<T> {
  shard.stats.commands++
  try {
    return await bounded(command(), shard.timeoutMs)
  } catch (error) {
    shard.stats.failures++
    throw new EngineUnavailableError(`redis ${shard.name}: ${(error as Error).message}`, { cause: error })
  }
}
