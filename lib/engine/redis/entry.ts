import type { Priority } from '../../protocol/priority.js'
import type { Publication, PublishRequest } from '../types.js'

/**
 * A stored message in Redis: `seq|storedAt|header\ndata`, where the script adds seq and storedAt and
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
