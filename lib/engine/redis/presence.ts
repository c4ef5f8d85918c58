import type { PresenceMember, PresencePage, PresenceStats, PresenceStore } from '../types.js'
import { TurnBatch } from '../turn-batch.js'
import { run, type Shard, type Shards } from './shards.js'

export interface RedisPresenceOptions {
  /** A member whose node stopped refreshing it is gone this long after the last refresh. */
  ttlMs: number
}

/** Members per refresh batch, and per call of a turn's joins and leaves: one takes Redis 1–2 ms. */
const BATCH = 1000

/** One script call of a refresh: some of a room's members; the room's last slice also drops expired members. */
interface RefreshSlice {
  room: string
  ids: string[]
  last: boolean
}

interface ScriptPipeline {
  sbPresenceRefresh (...args: (string | number)[]): void
  sbPresenceChange (...args: (string | number)[]): void
  exec (): Promise<[Error | null, unknown][]>
}

/** A change of a room's presence on its way to Redis: the member's JSON for a join, '' for a leave. */
interface Change {
  client: string
  json: string
}

interface StoredMember {
  c: string
  u?: string
  j: number
  i?: unknown
}

/**
 * Presence in Redis, shared by every node. Each node refreshes the expiry of its own members every
 * third of PRESENCE_TTL_MS, in batches of a thousand members (not one command per member), and each
 * room's last call also drops members nobody refreshes any more (a node that died) and announces them
 * as left.
 */
export class RedisPresence implements PresenceStore {
  /** This node's members, by room, with what they joined with: what its refresh keeps alive (or restores). */
  private readonly local = new Map<string, Map<string, string>>()
  private localMembers = 0
  private readonly refresher: NodeJS.Timeout
  /** The joins and leaves of a turn in the same room go to Redis together, in order, BATCH per call. */
  private readonly changes = new TurnBatch<Change, void>((room, changes) => this.apply(room, changes))

  /**
   * A member is kept this long past each refresh and refreshes come every third of the ttl, so a dead
   * node's member expires within 2/3 of it and the next refresh of any live node (or a read) drops it:
   * gone within PRESENCE_TTL_MS.
   */
  private readonly lifetimeMs: number

  constructor (private readonly shards: Shards, options: RedisPresenceOptions) {
    this.lifetimeMs = Math.floor(options.ttlMs * 2 / 3)
    this.refresher = setInterval(() => { void this.refresh() }, Math.max(100, Math.floor(options.ttlMs / 3)))
    this.refresher.unref()
  }

  join (room: string, member: PresenceMember): Promise<void> {
    const stored: StoredMember = { c: member.client, u: member.user, j: member.joinedAt, i: member.info }
    return this.changes.add(room, { client: member.client, json: JSON.stringify(stored) })
  }

  /** Not refreshed from now on, whether or not Redis is reached. */
  leave (room: string, client: string): Promise<void> {
    this.forget(room, client)
    return this.changes.add(room, { client, json: '' })
  }

  private async apply (room: string, changes: Change[]): Promise<void> {
    const shard = this.shards.of(room)
    const keys = this.keys(room)
    await Promise.all(Array.from({ length: Math.ceil(changes.length / BATCH) }, (_, slice) => {
      const pairs = changes.slice(slice * BATCH, (slice + 1) * BATCH).flatMap(({ client, json }) => [client, json])
      return run(shard, () => shard.command.sbPresenceChange(...keys, this.lifetimeMs, ...pairs))
    }))
    // In order, so that a member who joined and left within the turn is not refreshed.
    for (const { client, json } of changes) {
      if (json === '') {
        this.forget(room, client)
        continue
      }
      let clients = this.local.get(room)
      if (clients === undefined) {
        clients = new Map()
        this.local.set(room, clients)
      }
      if (!clients.has(client)) this.localMembers++
      clients.set(client, json)
    }
  }

  private forget (room: string, client: string): void {
    const clients = this.local.get(room)
    if (clients?.delete(client) === true) {
      this.localMembers--
      if (clients.size === 0) this.local.delete(room)
    }
  }

  async page (room: string, limit: number, cursor?: string): Promise<PresencePage> {
    const shard = this.shards.of(room)
    const after = cursor !== undefined && /^\d{1,16}$/.test(cursor) ? cursor : '0'
    const [total, flat, more, users] = await run(shard, () => shard.command.sbPresencePage(...this.keys(room), after, limit))
    const members: PresenceMember[] = []
    let last = after
    for (let i = 0; i < flat.length; i += 2) {
      last = flat[i] as string
      const stored = JSON.parse(flat[i + 1] as string) as StoredMember
      members.push({ client: stored.c, user: stored.u, joinedAt: stored.j, info: stored.i })
    }
    return more === 1 ? { total, users, members, cursor: last } : { total, users, members }
  }

  /** This node's share: the whole room lives in Redis. */
  stats (): PresenceStats {
    return { rooms: this.local.size, members: this.localMembers }
  }

  close (): void {
    clearInterval(this.refresher)
  }

  private keys (room: string): [string, string, string, string] {
    return [this.shards.key(room, 'p'), this.shards.key(room, 'm'), this.shards.key(room, 'x'), this.shards.key(room, 'u')]
  }

  /** Each shard's rooms in batches; a shard that is down is refreshed at the next round. */
  private async refresh (): Promise<void> {
    const byShard = new Map<number, [string, Map<string, string>][]>()
    for (const entry of this.local) {
      const index = this.shards.of(entry[0]).index
      let rooms = byShard.get(index)
      if (rooms === undefined) byShard.set(index, rooms = [])
      rooms.push(entry)
    }
    await Promise.all(Array.from(byShard, async ([index, rooms]) => {
      const shard = this.shards.list[index]
      if (shard !== undefined) await this.refreshShard(shard, rooms)
    }))
  }

  /**
   * Batches of up to BATCH members, one after another: Redis serves other clients between
   * them, and a command this node sends meanwhile waits behind one batch, not behind every room. (In
   * one call, a room of 16,000 held Redis for 80 ms.)
   */
  private async refreshShard (shard: Shard, rooms: [string, Map<string, string>][]): Promise<void> {
    let batch: RefreshSlice[] = []
    let size = 0
    for (const [room, clients] of rooms) {
      const ids = Array.from(clients.keys())
      for (let first = 0; first < ids.length; first += BATCH) {
        const slice = ids.slice(first, first + BATCH)
        if (size + slice.length > BATCH) {
          if (!await this.refreshBatch(shard, batch)) return
          batch = []
          size = 0
        }
        batch.push({ room, ids: slice, last: first + BATCH >= ids.length })
        size += slice.length
      }
    }
    if (batch.length > 0) await this.refreshBatch(shard, batch)
  }

  /** Extends a batch's members and restores the ones Redis lost; false when the shard did not answer. */
  private async refreshBatch (shard: Shard, batch: RefreshSlice[]): Promise<boolean> {
    if (shard.command.status !== 'ready') return false
    const pipeline = shard.command.pipeline() as unknown as ScriptPipeline
    for (const { room, ids, last } of batch) pipeline.sbPresenceRefresh(...this.keys(room), this.lifetimeMs, last ? this.shards.presenceChannel(room) : '', ...ids)
    const answers = await pipeline.exec().catch(() => null)
    if (answers === null) return false
    const restore = shard.command.pipeline() as unknown as ScriptPipeline
    let restoring = false
    answers.forEach(([error, answer], i) => {
      if (error !== null) return
      const { room } = batch[i] as RefreshSlice
      const clients = this.local.get(room)
      // Members that left since are not brought back.
      const pairs = (answer as [number, string[]])[1].flatMap(client => {
        const json = clients?.get(client)
        return json === undefined ? [] : [client, json]
      })
      if (pairs.length === 0) return
      restore.sbPresenceChange(...this.keys(room), this.lifetimeMs, ...pairs)
      restoring = true
    })
    if (restoring) await restore.exec().catch(() => {})
    return true
  }
}
