import { constants, inflateRawSync } from 'node:zlib'
import t from 'tap'
import { Opcode, createControlFrame, createFrame, encodeControlFrame, encodeTextFrame } from '../../../lib/delivery/frame.js'
import { Priority } from '../../../lib/protocol/priority.js'

function header (frame: Buffer): { fin: boolean, rsv1: boolean, opcode: number, length: number, offset: number } {
  const lengthByte = (frame[1] as number) & 0x7f
  const offset = lengthByte < 126 ? 2 : lengthByte === 126 ? 4 : 10
  const length = lengthByte < 126 ? lengthByte : lengthByte === 126 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2))
  return { fin: ((frame[0] as number) & 0x80) !== 0, rsv1: ((frame[0] as number) & 0x40) !== 0, opcode: (frame[0] as number) & 0x0f, length, offset }
}

function inflate (frame: Buffer): string {
  const { offset } = header(frame)
  return inflateRawSync(Buffer.concat([frame.subarray(offset), Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH }).toString()
}

const json = JSON.stringify({ users: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `user-${i}`, status: 'online' })) })

t.test('text frames carry 7-bit, 16-bit and 64-bit lengths', async t => {
  for (const size of [0, 125, 126, 65535, 65536, 70000]) {
    const frame = encodeTextFrame('a'.repeat(size))
    const h = header(frame)
    t.same({ fin: h.fin, rsv1: h.rsv1, opcode: h.opcode, length: h.length }, { fin: true, rsv1: false, opcode: Opcode.text, length: size }, `${size} bytes`)
    t.equal(frame.length, h.offset + size)
  }
})

t.test('a frame is compressed once per window size and the copy is shared', async t => {
  const frame = createFrame(json, Priority.normal)
  t.equal(frame.wire(undefined), frame.bytes, 'no deflate negotiated: the plain frame')
  const deflated = frame.wire({ windowBits: 15, threshold: 100 })
  t.ok(header(deflated).rsv1, 'RSV1 marks a compressed message')
  t.ok(deflated.length < frame.bytes.length / 2, `${deflated.length} bytes instead of ${frame.bytes.length}`)
  t.equal(inflate(deflated), json, 'inflates to the original payload')
  t.equal(frame.wire({ windowBits: 15, threshold: 100 }), deflated, 'the second recipient gets the same buffer')
  const narrow = frame.wire({ windowBits: 10, threshold: 100 })
  t.equal(inflate(narrow), json, 'a smaller window gets its own copy')
})

t.test('small, incompressible and control frames go out as they are', async t => {
  const small = createFrame('{"a":1}', Priority.normal)
  t.equal(small.wire({ windowBits: 15, threshold: 100 }), small.bytes, 'below the threshold')
  const tiny = createFrame('1', Priority.normal)
  t.equal(tiny.wire({ windowBits: 15, threshold: 0 }), tiny.bytes, 'compression would not make it smaller')
  const ping = createControlFrame(encodeControlFrame(Opcode.ping, Buffer.alloc(100, 'x')), Priority.critical)
  t.equal(ping.wire({ windowBits: 15, threshold: 0 }), ping.bytes, 'control frames are never compressed')
  t.same(header(ping.bytes), { fin: true, rsv1: false, opcode: Opcode.ping, length: 100, offset: 2 })
  t.throws(() => encodeControlFrame(Opcode.pong, Buffer.alloc(126)), RangeError)
})
