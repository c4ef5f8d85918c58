/**
 * Server-to-client WebSocket text frames (RFC 6455 §5.2), built once and shared by every recipient.
 * Server frames are never masked, so the same bytes are valid on every connection; building them here
 * lets a fan-out write the bytes straight to each socket instead of asking `ws` to frame them again.
 */
const OPCODE_TEXT_FIN = 0x81

export function encodeTextFrame (payload: string): Buffer {
  const payloadLength = Buffer.byteLength(payload)
  const headerLength = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + payloadLength)
  frame[0] = OPCODE_TEXT_FIN
  if (headerLength === 2) {
    frame[1] = payloadLength
  } else if (headerLength === 4) {
    frame[1] = 126
    frame.writeUInt16BE(payloadLength, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), 2)
    frame.writeUInt32BE(payloadLength >>> 0, 6)
  }
  frame.write(payload, headerLength, 'utf8')
  return frame
}
