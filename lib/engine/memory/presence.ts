import type { PresenceMember, PresencePage, PresenceStats, PresenceStore } from '../types.js'

interface Entry {
  readonly member: PresenceMember
  /** Join order within the room; the cursor names the last one a page returned. */
  readonly order: number
  removed: boolean
}

/**
 * One room's members in join order: an append-only array with tombstones, compacted when half of it
 * is dead, so a page starts with a binary search for the cursor and reads only what it returns.
 */
class RoomPresence {
  readonly byClient = new Map<string, Entry>()
  /** Connections per user, for the count of distinct users. */
  private readonly users = new Map<string, number>()
  private entries: Entry[] = []
  private dead = 0

  /** `order` grows across all rooms, so a cursor stays valid even when a room empties and refills. */
  join (member: PresenceMember, order: number): void {
    if (this.byClient.has(member.client)) return
    const entry = { member, order, removed: false }
    this.entries.push(entry)
    this.byClient.set(member.client, entry)
    if (member.user !== undefined) this.users.set(member.user, (this.users.get(member.user) ?? 0) + 1)
  }

  leave (client: string): void {
    const entry = this.byClient.get(client)
    if (entry === undefined) return
    this.byClient.delete(client)
    entry.removed = true
    const user = entry.member.user
    if (user !== undefined) {
      const left = (this.users.get(user) ?? 1) - 1
      if (left === 0) this.users.delete(user)
      else this.users.set(user, left)
    }
    if (++this.dead * 2 > this.entries.length) {
      this.entries = this.entries.filter(e => !e.removed)
      this.dead = 0
    }
  }

  page (limit: number, after: number): PresencePage {
    const entries = this.entries
    let low = 0
    let high = entries.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((entries[middle] as Entry).order <= after) low = middle + 1
      else high = middle
    }
    const members: PresenceMember[] = []
    let last = after
    let index = low
    for (; index < entries.length && members.length < limit; index++) {
      const entry = entries[index] as Entry
      if (entry.removed) continue
      members.push(entry.member)
      last = entry.order
    }
    while (index < entries.length && (entries[index] as Entry).removed) index++
    const more = index < entries.length
    const counts = { total: this.byClient.size, users: this.users.size }
    return more ? { ...counts, members, cursor: String(last) } : { ...counts, members }
  }
}

/** Presence in process memory: who is in which room, paginated by join order. */
export class MemoryPresence implements PresenceStore {
  private readonly rooms = new Map<string, RoomPresence>()
  private members = 0
  private nextOrder = 1

  join (room: string, member: PresenceMember): void {
    let presence = this.rooms.get(room)
    if (presence === undefined) {
      presence = new RoomPresence()
      this.rooms.set(room, presence)
    }
    const before = presence.byClient.size
    presence.join(member, this.nextOrder++)
    this.members += presence.byClient.size - before
  }

  leave (room: string, client: string): void {
    const presence = this.rooms.get(room)
    if (presence === undefined) return
    const before = presence.byClient.size
    presence.leave(client)
    this.members -= before - presence.byClient.size
    if (presence.byClient.size === 0) this.rooms.delete(room)
  }

  /** `cursor` is what the previous page returned; an unknown one starts from the beginning. */
  page (room: string, limit: number, cursor?: string): PresencePage {
    const presence = this.rooms.get(room)
    if (presence === undefined) return { total: 0, users: 0, members: [] }
    const after = cursor === undefined || !/^\d{1,15}$/.test(cursor) ? 0 : Number(cursor)
    return presence.page(limit, after)
  }

  stats (): PresenceStats {
    return { rooms: this.rooms.size, members: this.members }
  }

  close (): void {
    this.rooms.clear()
    this.members = 0
  }
}
