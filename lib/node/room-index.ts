import type { OutgoingFrame } from '../delivery/frame.js'
import type { Awaitable } from '../engine/types.js'

/** A connection as the node sees it: something with an id that accepts shared frames. */
export interface Connection {
  readonly id: string
  deliver (frame: OutgoingFrame): void
  /** A live room message or broadcast, which a quiet server may write at once (PriorityOutbox.enqueueLive). */
  deliverLive (frame: OutgoingFrame): void
  /** Ends the connection with a close handshake (shutdown uses 1001); resolves once it is closed. */
  close (code: number, reason: string): Promise<void>
  /** Drops the connection at once, for a peer that did not finish the close handshake in time. */
  terminate (): void
  /** Liveness check, called by the heartbeat sweep with the ping frame that every connection shares. */
  heartbeat (ping: OutgoingFrame): void
}

/** One room's local members. A member joining with recovery is pending: its live frames wait for the replay. */
export interface LocalRoom {
  readonly members: Set<Connection>
  pending: Map<Connection, OutgoingFrame[]> | undefined
  watchers: Set<Connection> | undefined
  /** The stream's epoch as this node last saw it; a publication with another one starts a new life. */
  epoch: string | undefined
  /** The broker subscription made when the room appeared on this node; every join waits for it. */
  subscribed: Awaitable<void>
  /** The broker's watch of the room's presence events while the room has a watcher on this node; false without one. */
  watched: Awaitable<void> | false
}

/** Who on this node is in which room; nothing about streams, which are the engine's. */
export class RoomIndex {
  private readonly rooms = new Map<string, LocalRoom>()
  private membershipCount = 0

  get (room: string): LocalRoom | undefined {
    return this.rooms.get(room)
  }

  /** Adds the connection (pending when it recovers first); true when the room is new on this node. */
  add (connection: Connection, roomName: string, pending: boolean, watch: boolean): boolean {
    let room = this.rooms.get(roomName)
    const created = room === undefined
    if (room === undefined) {
      room = { members: new Set(), pending: undefined, watchers: undefined, epoch: undefined, subscribed: undefined, watched: false }
      this.rooms.set(roomName, room)
    }
    if (!room.members.has(connection) && room.pending?.has(connection) !== true) this.membershipCount++
    room.members.delete(connection)
    if (pending) {
      if (room.pending === undefined) room.pending = new Map()
      room.pending.set(connection, [])
    } else {
      room.pending?.delete(connection)
      room.members.add(connection)
    }
    if (watch) {
      if (room.watchers === undefined) room.watchers = new Set()
      room.watchers.add(connection)
    } else {
      room.watchers?.delete(connection)
    }
    return created
  }

  /** Whether the connection is in the room, live or still pending. */
  has (connection: Connection, roomName: string): 'live' | 'pending' | undefined {
    const room = this.rooms.get(roomName)
    if (room === undefined) return undefined
    if (room.members.has(connection)) return 'live'
    return room.pending?.has(connection) === true ? 'pending' : undefined
  }

  /**
   * Moves a pending member to the live ones; returns the frames that arrived meanwhile, in order, or
   * undefined when it is no longer pending (it left, or disconnected, while its join was served).
   */
  activate (connection: Connection, roomName: string): OutgoingFrame[] | undefined {
    const room = this.rooms.get(roomName)
    const waiting = room?.pending?.get(connection)
    if (room === undefined || waiting === undefined) return undefined
    room.pending!.delete(connection)
    if (room.pending!.size === 0) room.pending = undefined
    room.members.add(connection)
    return waiting
  }

  /** Returns 'left' when it was a member, 'emptied' when it was the room's last one on this node. */
  remove (connection: Connection, roomName: string): 'absent' | 'left' | 'emptied' {
    const room = this.rooms.get(roomName)
    if (room === undefined) return 'absent'
    const wasMember = room.members.delete(connection) || room.pending?.delete(connection) === true
    if (!wasMember) return 'absent'
    this.membershipCount--
    room.watchers?.delete(connection)
    if (room.members.size === 0 && (room.pending === undefined || room.pending.size === 0)) {
      this.rooms.delete(roomName)
      return 'emptied'
    }
    return 'left'
  }

  /** Room names with their local member counts. */
  list (): { room: string, members: number }[] {
    return Array.from(this.rooms, ([room, { members, pending }]) => ({ room, members: members.size + (pending?.size ?? 0) }))
  }

  get size (): number {
    return this.rooms.size
  }

  get memberships (): number {
    return this.membershipCount
  }
}
