import { setImmediate as nextTurn } from 'node:timers/promises'
import type { FrameSink } from '../../lib/outbox.js'

/** Reads the JSON payload back out of a server text frame built by encodeTextFrame. */
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
  /** Frames per cork/uncork pair, in order. */
  readonly batches: number[] = []
  private corks = 0
  private batchStart = 0
  private callbacks: ((error?: Error | null) => void)[] = []

  cork (): void {
    if (this.corks++ === 0) this.batchStart = this.writes.filter(w => w.length > 0).length
  }

  uncork (): void {
    if (--this.corks === 0) this.batches.push(this.writes.filter(w => w.length > 0).length - this.batchStart)
  }

  write (chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    this.writes.push(chunk)
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

  /** Payloads written so far (empty chunks, used only to wait for the buffer, are left out). */
  messages (): unknown[] {
    return this.writes.filter(w => w.length > 0).map(decodeFrame)
  }
}

/** Lets the write pump run: it flushes in the check phase of the next event-loop turn. */
export async function turn (times = 1): Promise<void> {
  for (let i = 0; i < times; i++) await nextTurn()
}
