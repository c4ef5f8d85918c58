import { randomBytes } from 'node:crypto'
import type { Priority } from '../protocol/priority.js'
import { TurnBatch } from './turn-batch.js'
import type { Publication, PublishRequest, Recovery, StreamPosition } from './types.js'

/**
 * A stored message outside this process (a Redis list, a PostgreSQL row, a broker's message): `seq|storedAt|header\ndata`, where the script adds seq and storedAt and
 * the header is the request's other fields as a JSON array. `data` is already JSON text, so it is
 * neither parsed nor encoded again on its way through Redis.
 */
export function encodeRequest (request: PublishRequest): string {
  return JSON.stringify([request.priority, request.ts, request.from ?? null, request.user ?? null,
    request.ttlMs ?? null, request.key ?? null, request.id ?? null]) + '\n' + request.data
}

type Header = [Priority, number, string | null, string | null, number | null, string | null, string | null]

/** Reads an entry as stored in a history list (`seq|storedAt|payload`). */
export function decodeEntry (room: string, epoch: string, entry: string): Publication {
  const seqEnd = entry.indexOf('|')
  const storedEnd = entry.indexOf('|', seqEnd + 1)
  return decodePayload(room, epoch, Number(entry.slice(0, seqEnd)), entry, storedEnd + 1)
}

/** Reads a payload starting at `offset` of `text`, the form both history entries and pub/sub messages carry. */
export function decodePayload (room: string, epoch: string, seq: number, text: string, offset: number): Publication {
  const headerEnd = text.indexOf('\n', offset)
  const [priority, ts, from, user, ttlMs, key, id] = JSON.parse(text.slice(offset, headerEnd)) as Header
  return {
    room,
    data: text.slice(headerEnd + 1),
    priority,
    ts,
    from: from ?? undefined,
    user: user ?? undefined,
    ttlMs: ttlMs ?? undefined,
    key: key ?? undefined,
    id: id ?? undefined,
    seq,
    epoch
  }
}

const epochBase = randomBytes(6).toString('base64url')
let epochCounter = 0

/**
 * The epoch offered with every call to a shared store, used only when the call creates the stream.
 * Random per process plus a counter: unique across nodes, without a random draw per publish.
 */
export function candidateEpoch (): string {
  return epochBase + (epochCounter++).toString(36)
}

export interface StreamLimits {
  /** Messages kept per room; 0 keeps none (seqs and ids still work). */
  size: number
  ttlMs: number
  /** Per-room size and ttl (ROOMS_CONFIG namespaces). */
  limitsFor?: ((room: string) => { size?: number | undefined, ttlMs?: number | undefined } | undefined) | undefined
}

/** The room's history size and ttl: its namespace's where it has them, the defaults otherwise. */
export function limitsOf (options: StreamLimits, room: string): { size: number, ttlMs: number } {
  const limits = options.limitsFor?.(room)
  return { size: limits?.size ?? options.size, ttlMs: limits?.ttlMs ?? options.ttlMs }
}

/**
 * The reads a networked history store makes for joins, shared by the joins of one turn: one position
 * read per room, and one recovery read per room and position recovered from (a reconnect storm's
 * clients last saw the same seq).
 */
export class JoinReads {
  private readonly positions: TurnBatch<undefined, StreamPosition>
  private readonly recoveries: TurnBatch<{ room: string, since: StreamPosition, max: number }, Recovery>

  constructor (
    readPosition: (room: string) => Promise<StreamPosition>,
    readRecovery: (room: string, since: StreamPosition, max: number) => Promise<Recovery>
  ) {
    this.positions = new TurnBatch(room => readPosition(room))
    this.recoveries = new TurnBatch((_, [first]) => {
      const { room, since, max } = first as { room: string, since: StreamPosition, max: number }
      return readRecovery(room, since, max)
    })
  }

  position (room: string): Promise<StreamPosition> {
    return this.positions.add(room, undefined)
  }

  /** Recoveries with the same room, position and max get the same answer. */
  recover (room: string, since: StreamPosition, max: number): Promise<Recovery> {
    return this.recoveries.add(`${room}\u0000${since.epoch}\u0000${since.seq}\u0000${max}`, { room, since, max })
  }
}
