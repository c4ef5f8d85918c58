import fc from 'fast-check'
import t from 'tap'
import { compileRoomPattern } from '../../../lib/auth/room-pattern.js'

/** The grammar, spelled out as a backtracking matcher: the reference the compiled one must agree with. */
function reference (pattern: string, room: string): boolean {
  if (pattern === '') return room === ''
  if (pattern.startsWith('**')) {
    for (let i = 0; i <= room.length; i++) if (reference(pattern.slice(2), room.slice(i))) return true
    return false
  }
  if (pattern.startsWith('*')) {
    for (let i = 0; i <= room.length && (i === 0 || room[i - 1] !== ':'); i++) if (reference(pattern.slice(1), room.slice(i))) return true
    return false
  }
  return room.length > 0 && room[0] === pattern[0] && reference(pattern.slice(1), room.slice(1))
}

t.test('examples of the grammar', async t => {
  const cases: [string, string, boolean][] = [
    ['chat:*', 'chat:general', true],
    ['chat:*', 'chat:a:b', false],
    ['chat:*', 'chat:', true],
    ['chat:**', 'chat:a:b', true],
    ['**', 'anything:at:all', true],
    ['news', 'news', true],
    ['news', 'news2', false],
    ['a.b', 'aXb', false],
    ['user:*:inbox', 'user:42:inbox', true],
    ['user:*:inbox', 'user:42:x:inbox', false]
  ]
  for (const [pattern, room, expected] of cases) t.equal(compileRoomPattern(pattern)(room), expected, `${pattern} ~ ${room}`)
})

t.test('the compiled matcher agrees with the reference on random patterns and rooms', async t => {
  const alphabet = fc.constantFrom('a', 'b', ':', '.', '-', '/', '@', '_')
  const room = fc.array(alphabet, { maxLength: 10 }).map(chars => chars.join(''))
  const pattern = fc.array(fc.oneof(alphabet, fc.constant('*'), fc.constant('**')), { maxLength: 8 }).map(parts => parts.join(''))
  const fewWildcards = pattern.filter(p => (p.match(/\*+/g) ?? []).length <= 4)
  fc.assert(fc.property(fewWildcards, room, (p, r) => compileRoomPattern(p)(r) === reference(p, r)), { numRuns: 5000 })
  t.pass('5000 random cases agree')
})

t.test('a pattern with more than 4 wildcards is refused, so none can backtrack for long', async t => {
  t.throws(() => compileRoomPattern('**a**a**a**a**b'), RangeError)
  t.doesNotThrow(() => compileRoomPattern('a:*:b:*:**'))
})
