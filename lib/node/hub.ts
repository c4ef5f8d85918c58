import { createFrame, type OutgoingFrame } from '../delivery/frame.js'
import { encodeBroadcast, encodeMessage } from '../protocol/codec.js'
import type { Priority } from '../protocol/priority.js'

/** A connection as the hub sees it: something with an id that accepts shared frames. */
export interface Member {
  readonly id: string
  deliver (frame: OutgoingFrame): void
  /** Ends the connection with a close handshake (shutdown uses 1001); resolves once it is closed. */
  close (code: number, reason: string): Promise<void>
  /** Drops the connection at once, for a peer that did not finish the close handshake in time. */
  terminate (): void
  /** Liveness check, called by the heartbeat sweep with the ping frame that every member shares. */
  heartbeat (ping: OutgoingFrame): void
}

/** Inbound traffic counters in plain numbers, exported by the metrics plugin at scrape time. */
export class TrafficStats {
  received = 0
  readonly protocolErrors = new Map<string, number>()

  protocolError (code: string): void {
    this.protocolErrors.set(code, (this.protocolErrors.get(code) ?? 0) + 1)
  }
}

interface Room {
  readonly members: Set<Member>
  seq: number
}

export interface PublishOptions {
  priority: Priority
  ttlMs?: number | undefined
  /** Latest-value conflation key, scoped to the room. */
  key?: string | undefined
  /** Client id of the publisher; absent for server-side publishes. */
  from?: string | undefined
}

export interface PublishResult {
  seq: number
  recipients: number
}

export interface HubStats {
  connections: number
  rooms: number
  memberships: number
}

/**
 * Rooms and connections. A room exists while it has members: it is created by its first join and removed,
 * with its sequence, when its last member leaves. Every publish is encoded once and shared by all members.
 */
export class Hub {
  private readonly rooms = new Map<string, Room>()
  private readonly connections = new Set<Member>()
  private membershipCount = 0
  readonly traffic = new TrafficStats()

  connect (member: Member): void {
    this.connections.add(member)
  }

  /** Removes the member from the hub and from each of the given rooms. */
  disconnect (member: Member, rooms: Iterable<string>): void {
    for (const room of rooms) this.leave(member, room)
    this.connections.delete(member)
  }

  /** Adds the member to the room; returns the room's latest sequence (0 before the first message). */
  join (member: Member, roomName: string): number {
    let room = this.rooms.get(roomName)
    if (room === undefined) {
      room = { members: new Set(), seq: 0 }
      this.rooms.set(roomName, room)
    }
    if (!room.members.has(member)) {
      room.members.add(member)
      this.membershipCount++
    }
    return room.seq
  }

  /** Returns whether the member was in the room. */
  leave (member: Member, roomName: string): boolean {
    const room = this.rooms.get(roomName)
    if (room === undefined || !room.members.delete(member)) return false
    this.membershipCount--
    if (room.members.size === 0) this.rooms.delete(roomName)
    return true
  }

  /** Delivers to every member of the room. A room without members takes no sequence number (seq 0). */
  publish (roomName: string, data: unknown, options: PublishOptions): PublishResult {
    const room = this.rooms.get(roomName)
    if (room === undefined) return { seq: 0, recipients: 0 }
    const seq = ++room.seq
    const payload = encodeMessage(roomName, seq, JSON.stringify(data) ?? 'null', options.priority, Date.now(), options.from)
    const conflationKey = options.key === undefined ? undefined : `${roomName}\u0000${options.key}`
    const frame = createFrame(payload, options.priority, options.ttlMs, conflationKey)
    for (const member of room.members) member.deliver(frame)
    return { seq, recipients: room.members.size }
  }

  /** Delivers to every connection; returns how many. */
  broadcast (data: unknown, priority: Priority, ttlMs?: number): number {
    const frame = createFrame(encodeBroadcast(JSON.stringify(data) ?? 'null', priority, Date.now()), priority, ttlMs)
    for (const member of this.connections) member.deliver(frame)
    return this.connections.size
  }

  /** Room names with their member counts. */
  listRooms (): { room: string, members: number }[] {
    return Array.from(this.rooms, ([room, { members }]) => ({ room, members: members.size }))
  }

  /** Every connected member, for the heartbeat sweep and shutdown. */
  members (): IterableIterator<Member> {
    return this.connections.values()
  }

  stats (): HubStats {
    return { connections: this.connections.size, rooms: this.rooms.size, memberships: this.membershipCount }
  }
}
