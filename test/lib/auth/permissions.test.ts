import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Can, RoomPolicy, grantsOf, type Principal } from '../../../lib/auth/permissions.js'

const anonymous: Principal = { user: undefined, grants: [] }
const alice: Principal = { user: 'alice', grants: [] }
const granted: Principal = { user: 'bob', grants: grantsOf({ 'vip:*': ['join', 'publish'] }) ?? [] }

function names (bits: number): string[] {
  return (Object.keys(Can) as (keyof typeof Can)[]).filter(name => (bits & Can[name]) !== 0)
}

t.test('namespaces decide by rule, grants add, an unmatched room is closed', async t => {
  const policy = RoomPolicy.fromConfig({
    namespaces: [
      { rooms: 'public:*', join: 'anyone', publish: 'authenticated', history: 'anyone', presence: 'granted' },
      { rooms: 'vip:*', join: 'granted', publish: 'granted', history: 'granted', presence: 'granted' },
      { rooms: 'news:**', join: 'anyone', publish: 'server', history: 'anyone', presence: 'server' },
      { rooms: 'team:*' }
    ]
  })
  t.same(names(policy.decide('public:lobby', anonymous)), ['join', 'history'])
  t.same(names(policy.decide('public:lobby', alice)), ['join', 'publish', 'history'])
  t.same(names(policy.decide('vip:lounge', alice)), [], 'granted rooms need a grant')
  t.same(names(policy.decide('vip:lounge', granted)), ['join', 'publish'], 'the grant, nothing more')
  t.same(names(policy.decide('news:world:today', alice)), ['join', 'history'], 'server-only capabilities are not for clients')
  t.same(names(policy.decide('team:core', anonymous)), [], 'omitted rules mean authenticated')
  t.same(names(policy.decide('team:core', alice)), ['join', 'publish', 'history', 'presence'])
  t.same(names(policy.decide('elsewhere', alice)), [], 'a room no namespace matches is closed')
  t.same(names(RoomPolicy.open().decide('anything', anonymous)), ['join', 'publish', 'history', 'presence'], 'without ROOMS_CONFIG everything is open')
})

t.test('the rooms claim must map patterns to known capabilities', async t => {
  t.equal(grantsOf({ 'chat:*': ['join', 'fly'] }), undefined)
  t.equal(grantsOf(['chat:*']), undefined)
  t.equal(grantsOf({ 'chat:*': 'join' }), undefined)
  t.equal(grantsOf({ 'chat:*': ['join'] })?.length, 1)
})

t.test('ROOMS_CONFIG errors name the file, the path in it and the field', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'rooms-'))
  const write = (name: string, text: string): string => { const file = join(dir, name); writeFileSync(file, text); return file }
  t.throws(() => RoomPolicy.fromFile(write('bad-rule.json', JSON.stringify({ namespaces: [{ rooms: 'a:*', join: 'everyone' }] }))), { name: 'ConfigError', message: /bad-rule\.json: \/namespaces\/0\/join/ })
  t.throws(() => RoomPolicy.fromFile(write('extra.json', JSON.stringify({ namespaces: [{ rooms: 'a:*', jion: 'anyone' }] }))), { message: /extra\.json: \/namespaces\/0\/jion/ })
  t.throws(() => RoomPolicy.fromFile(write('broken.json', '{')), { message: /broken\.json: / })
  t.throws(() => RoomPolicy.fromFile(join(dir, 'missing.json')), { message: /missing\.json: / })
  t.ok(RoomPolicy.fromFile(write('good.json', JSON.stringify({ namespaces: [{ rooms: '**', join: 'anyone' }] }))).namespaceOf('x'))
})
