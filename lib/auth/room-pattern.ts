/**
 * Room patterns of grants and namespaces. A room name is segments separated by `:`; in a pattern `*`
 * matches any characters within one segment (none included) and `**` any characters across segments;
 * everything else matches itself. `chat:*` matches `chat:general` but not `chat:a:b`; `chat:**`
 * matches both; `**` matches every room.
 */
export type RoomMatcher = (room: string) => boolean

/** More wildcards than this would let a pattern backtrack for long on a 128-character room name. */
export const MAX_WILDCARDS = 4

export function compileRoomPattern (pattern: string): RoomMatcher {
  if ((pattern.match(/\*+/g) ?? []).length > MAX_WILDCARDS) {
    throw new RangeError(`a room pattern has at most ${MAX_WILDCARDS} wildcards (${pattern})`)
  }
  let source = '^'
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string
    if (char === '*') {
      if (pattern[i + 1] === '*') {
        source += '.*'
        i++
      } else {
        source += '[^:]*'
      }
    } else {
      source += char.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')
    }
  }
  const regexp = new RegExp(source + '$')
  return room => regexp.test(room)
}
