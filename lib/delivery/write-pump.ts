import { performance } from 'node:perf_hooks'

/** What the pump flushes: an outbox, at most once per pass. */
export interface Flushable {
  flush (now: number): void
}

/**
 * How long one slice of a pass may write, in milliseconds, before the pump lets the loop read again and
 * continues the pass in the next turn.
 */
export const SWEEP_SLICE_MS = 1
/**
 * Frames queued within this many milliseconds of the end of the previous slice wait for the end of the
 * event-loop turn, so that everything the turn produces for a socket goes out in one write.
 */
export const BUSY_WITHIN_MS = 0.5
const CLOCK_EVERY = 8

/**
 * Decides when outboxes are flushed, and flushes each one at most once per pass.
 *
 * - A quiet server writes at once: frames queued when nothing was flushed for BUSY_WITHIN_MS are written
 *   in a microtask, at the end of the callback that produced them (one client frame, one task result),
 *   all of that callback's frames for a socket in one write. Waiting for the check phase instead cost
 *   about 0.06 ms of latency per message here. Once the WebSocket parser has handled a read chunk,
 *   the session calls flushQuiet, which does that microtask's work at once.
 * - In such a quiet callback a live message or broadcast for a socket with nothing waiting is written
 *   as it is fanned out (see liveTurn), so its first recipients do not wait for the rest of the publish.
 *   The callback's later frames for that socket coalesce as above.
 * - A busy server coalesces: frames queued soon after a flush wait for the check phase of the turn
 *   (setImmediate), after every readable socket was read, and each outbox writes everything it got in
 *   that turn at once.
 * - A large pass (a fan-out to thousands of sockets) takes longer than the gap between two publishes,
 *   so it runs in slices of SWEEP_SLICE_MS. Between slices the loop reads, and a frame published
 *   meanwhile joins the queues of the outboxes the pass has not reached yet, which write it with their
 *   pending frames; the outboxes already written get it in the next pass. A frame then waits at most
 *   about one pass, instead of the rest of the pass in progress plus the next one.
 */
export class WritePump {
  // Both lists keep their backing arrays and count their entries themselves: emptying an array by
  // setting its length to 0 frees its storage, and the next publish allocated it again (BENCHMARKS.md).
  /** The pass in progress, written up to `position`. */
  private pass: (Flushable | undefined)[] = []
  private passLength = 0
  private position = 0
  /** Outboxes that received frames since the pass began (or after it wrote them). */
  private next: (Flushable | undefined)[] = []
  private nextLength = 0
  private scheduled = false
  /** The scheduled run is a quiet one, in a microtask that flushQuiet may run sooner. */
  private quietRunPending = false
  private sweeping = false
  private lastSliceEnd = -Infinity
  /** The quiet callback in which live frames are written at once: its number, and when it must stop. */
  private liveTurnNumber = 0
  private liveTurnUntil = 0
  private liveWrites = 0

  /** `clock` is performance.now unless a test needs to control time. */
  constructor (private readonly clock: () => number = () => performance.now()) {}

  schedule (outbox: Flushable): void {
    this.next[this.nextLength++] = outbox
    if (this.scheduled) return
    this.scheduled = true
    if (this.isQuiet()) {
      this.quietRunPending = true
      queueMicrotask(this.flushQuiet)
    } else {
      setImmediate(this.run)
    }
  }

  /**
   * Writes now what a quiet server has queued, instead of in the microtask; a busy pump keeps coalescing
   * until the check phase. Meant for the end of handling a read chunk, which is all the microtask would
   * have waited for, only later: after the return through the stream code, which took about 0.08 ms
   * here on a core that had been idle. Calling it per client frame instead would write a chunk that
   * holds several frames in several passes. Bound, so that it serves as the microtask too.
   */
  readonly flushQuiet = (): void => {
    this.endLiveTurn()
    if (!this.quietRunPending) return
    this.quietRunPending = false
    this.run()
  }

  /**
   * The number of the quiet callback in progress, in which a live frame for a socket with nothing
   * waiting may be written at once; 0 when it must be queued. A callback is quiet when the pump is
   * (isQuiet) and no busy run is pending. Its direct writes stop after SWEEP_SLICE_MS, as a pass's slice
   * does, so that a fan-out to thousands continues in the pump's slices. Each socket takes one such write per callback:
   * the callback's other frames for it coalesce.
   */
  liveTurn (): number {
    if (this.liveTurnUntil === 0) {
      if ((this.scheduled && !this.quietRunPending) || !this.isQuiet()) return 0
      this.liveTurnNumber++
      this.liveTurnUntil = this.clock() + SWEEP_SLICE_MS
      this.liveWrites = 0
      queueMicrotask(this.endLiveTurn)
    } else if (++this.liveWrites === CLOCK_EVERY) {
      this.liveWrites = 0
      if (this.clock() >= this.liveTurnUntil) {
        this.endLiveTurn()
        return 0
      }
    }
    return this.liveTurnNumber
  }

  /** No pass is being written and none was for BUSY_WITHIN_MS; the clock is read only when the rest holds. */
  private isQuiet (): boolean {
    return !this.sweeping && this.position === this.passLength && this.clock() - this.lastSliceEnd >= BUSY_WITHIN_MS
  }

  /** The callback's direct writes count as a slice: frames queued soon after them coalesce. */
  private readonly endLiveTurn = (): void => {
    if (this.liveTurnUntil === 0) return
    this.liveTurnUntil = 0
    this.lastSliceEnd = this.clock()
  }

  private readonly run = (): void => {
    this.scheduled = false
    if (this.position === this.passLength) {
      const finished = this.pass
      this.pass = this.next
      this.passLength = this.nextLength
      this.next = finished
      this.nextLength = 0
      this.position = 0
    }
    const pass = this.pass
    const length = this.passLength
    let now = this.clock()
    const deadline = now + SWEEP_SLICE_MS
    this.sweeping = true
    // One clock read per few writes: a write costs microseconds, the slice is a millisecond.
    for (let sinceClock = 0; this.position < length; sinceClock++) {
      if (sinceClock === CLOCK_EVERY) {
        now = this.clock()
        if (now >= deadline) break
        sinceClock = 0
      }
      const outbox = pass[this.position] as Flushable
      // Cleared as it is written, so that a released outbox is not kept alive by an old pass.
      pass[this.position++] = undefined
      outbox.flush(now)
    }
    this.sweeping = false
    this.lastSliceEnd = this.clock()
    // Rescheduled while sweeping (a full batch, a frame left behind) or still to write: the next turn.
    if (!this.scheduled && (this.position < length || this.nextLength > 0)) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }
}
