import t from 'tap'
import { encodeTextFrame } from '../../../lib/delivery/frame.js'
import { Priority, parsePriority } from '../../../lib/protocol/priority.js'
import {
  decodeClientFrame, encodeBroadcast, encodeError, encodeMessage, encodePong, encodeReply, encodeWelcome, priorityOf
} from '../../../lib/protocol/codec.js'
import { decodeFrame } from '../../helpers/fake-sink.js'

const options = { defaultTask: 'echo' }
const decode = (text: string) => decodeClientFrame(text, options)

t.test('decodes every JSON op', async t => {
  t.same(decode('{"op":"join","room":"lobby","ref":1}'), { ok: true, value: { op: 'join', room: 'lobby', ref: 1 } })
  t.same(decode('{"op":"leave","room":"lobby"}'), { ok: true, value: { op: 'leave', room: 'lobby' } })
  t.match(decode('{"op":"publish","room":"a/b@c:d.e_f-g","data":{"x":[1]},"priority":"high","ttlMs":50,"key":"k"}'), { ok: true, value: { op: 'publish', data: { x: [1] } } })
  t.match(decode('{"op":"publish","room":"r","data":null,"priority":0}'), { ok: true })
  t.match(decode('{"op":"broadcast","data":"hi","priority":"low"}'), { ok: true })
  t.match(decode('{"op":"task","name":"sha256","data":"x","priority":3,"ref":"abc","retries":2,"timeoutMs":100,"key":"k"}'), { ok: true })
  t.same(decode('{"op":"ping","ref":"p"}'), { ok: true, value: { op: 'ping', ref: 'p' } })
})

t.test('rejects bad frames with a message that says what is wrong, keeping a valid ref', async t => {
  t.match(decode('{"op":"join"'), { ok: false, ref: undefined, message: /^malformed JSON/ })
  t.match(decode('[1,2]'), { ok: false, message: /JSON object/ })
  t.match(decode('{"op":"fly","ref":7}'), { ok: false, ref: 7, message: /unknown op "fly"; expected one of join, leave, publish/ })
  t.match(decode('{"room":"x"}'), { ok: false, message: /unknown op undefined/ })
  t.match(decode('{"op":"join","ref":2}'), { ok: false, ref: 2, message: 'join: room is required' })
  t.match(decode('{"op":"join","room":"has space"}'), { ok: false, message: /room must be 1–128 characters/ })
  t.match(decode(`{"op":"join","room":"${'r'.repeat(129)}"}`), { ok: false, message: /room must be/ })
  t.match(decode('{"op":"publish","room":"r"}'), { ok: false, message: 'publish: data is required' })
  t.match(decode('{"op":"publish","room":"r","data":1,"priority":"urgent"}'), { ok: false, message: /priority must be one of critical, high, normal, low or 0–3/ })
  t.match(decode('{"op":"publish","room":"r","data":1,"priority":4}'), { ok: false, message: /priority/ })
  t.match(decode('{"op":"publish","room":"r","data":1,"ttlMs":-5}'), { ok: false, message: /ttlMs/ })
  t.match(decode(`{"op":"ping","ref":"${'x'.repeat(65)}"}`), { ok: false, ref: undefined, message: /ref must be/ })
  t.match(decode('{"op":"ping","ref":{"a":1}}'), { ok: false, message: /ref must be/ })
})

t.test('text commands of the seed protocol', async t => {
  t.same(decode('join:roomA'), { ok: true, value: { op: 'join', room: 'roomA' } })
  t.same(decode('leave:roomA'), { ok: true, value: { op: 'leave', room: 'roomA' } })
  t.same(decode('msg:hello: world'), { ok: true, value: { op: 'say', text: 'hello: world' } })
  t.same(decode('task:hello'), { ok: true, value: { op: 'task', name: 'echo', data: 'hello' } })
  t.same(decodeClientFrame('task:x', { defaultTask: 'sha256' }), { ok: true, value: { op: 'task', name: 'sha256', data: 'x' } })
  t.match(decode('join:'), { ok: false, message: /room must be/ })
  t.match(decode('hello'), { ok: false, message: /text command/ })
  t.match(decode(''), { ok: false })
})

t.test('priorities accept names and 0–3 aliases', async t => {
  t.equal(parsePriority('critical'), Priority.critical)
  t.equal(parsePriority(3), Priority.low)
  t.equal(parsePriority(4), undefined)
  t.equal(parsePriority(1.5), undefined)
  t.equal(parsePriority('toString'), undefined, 'no prototype keys')
  t.equal(priorityOf(undefined), Priority.normal)
  t.equal(priorityOf('high'), Priority.high)
})

t.test('server frames are valid JSON of the documented shape', async t => {
  t.same(JSON.parse(encodeWelcome('c1', 25000, 65536)), { op: 'welcome', client: 'c1', version: 1, heartbeatMs: 25000, maxPayload: 65536 })
  t.same(JSON.parse(encodeReply(5, { seq: 3 })), { op: 'reply', ref: 5, ok: true, seq: 3 })
  t.same(JSON.parse(encodeReply(undefined, { data: 'x' })), { op: 'reply', ok: true, data: 'x' })
  t.same(JSON.parse(encodeReply('r', {})), { op: 'reply', ref: 'r', ok: true })
  t.same(JSON.parse(encodeReply('r')), { op: 'reply', ref: 'r', ok: true })
  t.same(JSON.parse(encodeError('r"q', 'bad_request', 'say "what"')), { op: 'error', ref: 'r"q', code: 'bad_request', message: 'say "what"' })
  t.same(JSON.parse(encodeError(undefined, 'forbidden', 'no')), { op: 'error', code: 'forbidden', message: 'no' })
  t.same(JSON.parse(encodePong(undefined)), { op: 'pong' })
  t.same(JSON.parse(encodePong(9)), { op: 'pong', ref: 9 })
  t.same(JSON.parse(encodeMessage({ room: 'r', seq: 4, data: '{"a":"\\u0000"}', priority: Priority.low, ts: 10, from: 'c2' })), { op: 'message', room: 'r', seq: 4, data: { a: '\u0000' }, priority: 'low', ts: 10, from: 'c2' })
  t.same(JSON.parse(encodeBroadcast('[1]', Priority.critical, 11)), { op: 'broadcast', data: [1], priority: 'critical', ts: 11 })
})

t.test('text frames use the right length encoding at each boundary', async t => {
  for (const size of [0, 125, 126, 65535, 65536, 70000]) {
    const payload = JSON.stringify('x'.repeat(Math.max(0, size - 2)))
    const frame = encodeTextFrame(payload)
    t.equal(frame[0], 0x81, 'FIN + text opcode')
    const len = frame[1]! & 0x7f
    const expectedHeader = payload.length < 126 ? 2 : payload.length < 65536 ? 4 : 10
    t.equal(frame.length, expectedHeader + payload.length, `size ${payload.length}`)
    if (expectedHeader === 4) t.equal(frame.readUInt16BE(2), payload.length)
    if (expectedHeader === 10) t.equal(Number(frame.readBigUInt64BE(2)), payload.length)
    if (expectedHeader === 2) t.equal(len, payload.length)
    t.equal(decodeFrame(frame), JSON.parse(payload))
  }
  t.equal(decodeFrame(encodeTextFrame('"é€😀"')), 'é€😀', 'length counts UTF-8 bytes')
})
