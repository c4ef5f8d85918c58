import type { PresenceMember, PresencePage, PresenceStats, PresenceStore } from '../types.js'
import { run, type Shards } from './shards.js'

export interface RedisPresenceOptions {
  /** A member whose node stopped refreshing it is gone this long after the last refresh. */
  ttlMs: number
}

/** Members per refresh call: a slice takes Redis about a millisecond. */
const REFRESH_SLICE = 1000

interface ScriptPipeline {
  sbPresenceRefresh (...args: (string | number)[]): void
  sbPresenceRestore (...args: (string | number)[]): void
  exec (): Promise<[Error | null, unknown][]>
}

interface StoredMember {
  c: string
  u?: string
  j: number
  i?: unknown
}

/**
 * Presence in Redis, shared by every node. Each node refreshes the expiry of its own members every
 * third of PRESENCE_TTL_MS, a script call per thousand members of a room (not one command per member),
 * and a room's last call also drops members nobody refreshes any more (a node that died) and announces
 * them as left.
 */
export class RedisPresence implements PresenceStore {
  /** This node's members, by room, with what they joined with: what its refresh keeps alive (or restores). */
  private readonly local = new Map<string, Map<string, string>>()
  private localMembers = 0
  private readonly refresher: NodeJS.Timeout

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

  async join (room: string, member: PresenceMember): Promise<void> {
    const shard = this.shards.of(room)
    const stored: StoredMember = { c: member.client, u: member.user, j: member.joinedAt, i: member.info }
    const json = JSON.stringify(stored)
    await run(shard, () => shard.command.sbPresenceJoin(...this.keys(room), member.client, json, this.lifetimeMs, member.user ?? ''))
    let clients = this.local.get(room)
    if (clients === undefined) {
      clients = new Map()
      this.local.set(room, clients)
    }
    if (!clients.has(member.client)) this.localMembers++
    clients.set(member.client, json)
  }

  async leave (room: string, client: string): Promise<void> {
    const clients = this.local.get(room)
    if (clients?.delete(client) === true) {
      this.localMembers--
      if (clients.size === 0) this.local.delete(room)
    }
    const shard = this.shards.of(room)
    await run(shard, () => shard.command.sbPresenceLeave(...this.keys(room), client))
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

  /**
   * One pipeline per shard, a room's members in slices: Redis runs one slice at a time and serves
   * other clients in between, where a room of 16,000 members in one call held it for 50–80 ms. A shard
   * that is down is refreshed at the next round.
   */
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
      if (shard === undefined || shard.command.status !== 'ready') return
      const pipeline = shard.command.pipeline() as unknown as ScriptPipeline
      const sliceRooms: string[] = []
      for (const [room, clients] of rooms) {
        const ids = Array.from(clients.keys())
        for (let first = 0; first < ids.length; first += REFRESH_SLICE) {
          const last = first + REFRESH_SLICE >= ids.length
          pipeline.sbPresenceRefresh(...this.keys(room), this.lifetimeMs, last ? this.shards.channel(room) : '', ...ids.slice(first, first + REFRESH_SLICE))
          sliceRooms.push(room)
        }
      }
      const answers = await pipeline.exec().catch(() => null)
      if (answers === null) return
      const restore = shard.command.pipeline() as unknown as ScriptPipeline
      let restoring = false
      answers.forEach(([error, answer], i) => {
        if (error !== null) return
        const room = sliceRooms[i] as string
        const clients = this.local.get(room)
        // Members that left since are not brought back.
        const pairs = (answer as [number, string[]])[1].flatMap(client => {
          const json = clients?.get(client)
          return json === undefined ? [] : [client, json]
        })
        for (let first = 0; first < pairs.length; first += 2 * REFRESH_SLICE) {
          restore.sbPresenceRestore(...this.keys(room), this.lifetimeMs, ...pairs.slice(first, first + 2 * REFRESH_SLICE))
          restoring = true
        }
      })
      if (restoring) await restore.exec().catch(() => {})
    }))
  }
}
