import { setImmediate as nextTurn } from 'node:timers/promises'
import type { FrameSink } from '../../lib/delivery/outbox.js'

/** Splits a chunk into the server text frames (built by encodeTextFrame) it holds. */
export function splitFrames (chunk: Buffer): Buffer[] {
  const frames: Buffer[] = []
  let offset = 0
  while (offset < chunk.length) {
    const lengthByte = (chunk[offset + 1] as number) & 0x7f
    const header = lengthByte < 126 ? 2 : lengthByte === 126 ? 4 : 10
    const length = lengthByte < 126 ? lengthByte : lengthByte === 126 ? chunk.readUInt16BE(offset + 2) : Number(chunk.readBigUInt64BE(offset + 2))
    frames.push(chunk.subarray(offset, offset + header + length))
    offset += header + length
  }
  return frames
}

/** Reads the JSON payload back out of one server text frame. */
export function decodeFrame (frame: Buffer): unknown {
  const lengthByte = (frame[1] as number) & 0x7f
  const offset = lengthByte < 126 ? 2 : lengthByte === 126 ? 4 : 10
  return JSON.parse(frame.subarray(offset).toString('utf8'))
}

/**
 * A socket stand-in: it records every write and every corked batch, and it "reaches the kernel" only
 * when the test calls release(), so backpressure is under the test's control.
 */
export class FakeSink implements FrameSink {
  writable = true
  writableLength = 0
  readonly writes: Buffer[] = []
  private callbacks: ((error?: Error | null) => void)[] = []
  private corked: Buffer[] | undefined

  /** Writes between cork and uncork are recorded as one chunk, as a vectored write would send them. */
  cork (): void {
    this.corked = []
  }

  uncork (): void {
    const pending = this.corked ?? []
    this.corked = undefined
    this.writes.push(Buffer.concat(pending))
  }

  /** Frames per write call, in order (empty chunks, used only to wait for the buffer, are left out). */
  get batches (): number[] {
    return this.writes.filter(w => w.length > 0).map(w => splitFrames(w).length)
  }

  /** Every chunk passed to write(), before cork grouping. */
  readonly calls: Buffer[] = []

  write (chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    this.calls.push(chunk)
    if (this.corked !== undefined) this.corked.push(chunk)
    else this.writes.push(chunk)
    this.writableLength += chunk.length
    if (callback !== undefined) this.callbacks.push(callback)
    return true
  }

  /** The kernel takes everything buffered; pending write callbacks run. */
  release (): void {
    this.writableLength = 0
    const callbacks = this.callbacks
    this.callbacks = []
    for (const callback of callbacks) callback()
  }

  /** Payloads written so far, in order. */
  messages (): unknown[] {
    return this.writes.flatMap(splitFrames).map(decodeFrame)
  }
}

/** Lets the write pump run: it flushes in the check phase of the next event-loop turn. */
export async function turn (times = 1): Promise<void> {
  for (let i = 0; i < times; i++) await nextTurn()
}
