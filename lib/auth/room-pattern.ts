/**
 * Room patterns of grants and namespaces. A room name is segments separated by `:`; in a pattern `*`
 * matches any characters within one segment (none included) and `**` any characters across segments;
 * everything else matches itself. `chat:*` matches `chat:general` but not `chat:a:b`; `chat:**`
 * matches both; `**` matches every room.
 */
export type RoomMatcher = (room: string) => boolean

export function compileRoomPattern (pattern: string): RoomMatcher {
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
