import type { HistoryPage, HistoryQuery, Publication, StreamPosition } from './types.js'

/** Where the sequencer hands what it put in order. */
export interface SequencerSink {
  publication (publication: Publication): void
  /** The room's stream began a new life that no publication announced (it was lost and recreated). */
  epoch (room: string, epoch: string): void
  /** Seqs `from`…`to` of the room passed this node by and history no longer keeps them. */
  lost (room: string, from: number, to: number): void
}

export class SequencerStats {
  /** Repairs started: a hole seen in the live stream, or a position check that found the node behind. */
  repairs = 0
  /** History reads of a repair that failed and were tried again. */
  retries = 0
  /** Messages delivered from history instead of the live stream. */
  filled = 0
  /** Messages reported lost to the members (gap frames with reason `lost`). */
  lost = 0
  /** Duplicates of messages already delivered, dropped. */
  duplicates = 0
}

interface RoomState {
  epoch: string
  /** The latest seq handed on. */
  last: number
  /** Live messages that arrived after a hole: waiting for it to fill (in seq order), or for a repair. */
  held: Publication[] | undefined
  /** Set while a hole may still fill by itself (a broker that does not order); the repair starts when it fires. */
  holdTimer: NodeJS.Timeout | undefined
  /** Set while a repair waits to read history again after a failed read. */
  retryTimer: NodeJS.Timeout | undefined
  /** The stream's top at the previous position check, when this node was behind it. */
  behindAt: number | undefined
  /** After a reconnect: repair at the next check without waiting for a second look. */
  urgent: boolean
  /** Lives this room's stream has left: a late message of one of them is dropped, not taken for a new life. */
  pastEpochs: Set<string> | undefined
  /** Joins waiting for this node to have handed on a seq (see `until`). */
  waiters: { seq: number, epoch: string, resolve: () => void }[] | undefined
}

const REPAIR_PAGE = 1000

/**
 * A repair reads history again after each of these delays before it reports the hole lost: after a
 * failed read (a read that timed out on a loaded database is not a loss, and the messages are still
 * there), and, with a broker that does not order, when history no longer has the start of the hole
 * (a burst longer than the history pushed it out, while the messages are still on their way live).
 * About 8 s in all: a node's Redis connections reconnect each on its own backoff of up to 2 s, so its
 * subscriber can bring live messages while its reads still fail for a few seconds.
 */
export const REPAIR_RETRY_MS: readonly number[] = [100, 500, 2000, 5000]

/** Live messages a retrying repair holds at most; past it, the hole is reported rather than memory spent. */
export const HELD_MAX = 10_000

/**
 * How long a broker that does not order keeps a hole open before reading history: on one machine,
 * two nodes' publishes of one room arrive swapped within a few milliseconds.
 */
export const UNORDERED_HOLD_MS = 20

/**
 * Keeps each subscribed room's messages gapless and in seq order on their way from a broker to the
 * node. A live message that skips seqs holds the ones after it until the missing ones are read from
 * history; a periodic position check catches the messages of a quiet room that never arrived (a
 * dropped pub/sub connection). What history no longer has is reported as lost, never skipped silently.
 */
export class Sequencer {
  private readonly rooms = new Map<string, RoomState>()
  readonly stats = new SequencerStats()

  /**
   * `holdMs`: how long a hole may wait for its message before history is read. 0 for a broker that
   * delivers in seq order (a hole means a loss); a broker fed by several nodes after their own commits
   * delivers out of order, and most holes fill themselves within milliseconds.
   */
  constructor (
    private readonly sink: SequencerSink,
    private readonly read: (room: string, query: HistoryQuery) => Promise<HistoryPage>,
    private readonly holdMs = 0,
    private readonly retryDelaysMs = REPAIR_RETRY_MS
  ) {}

  /**
   * Starts with the position read before the subscription: everything after it is published while (or
   * after) the subscription is made, so it either arrives live or shows up as a hole to repair.
   */
  track (room: string, position: StreamPosition): void {
    if (!this.rooms.has(room)) this.rooms.set(room, { epoch: position.epoch, last: position.seq, held: undefined, holdTimer: undefined, retryTimer: undefined, behindAt: undefined, urgent: false, pastEpochs: undefined, waiters: undefined })
  }

  untrack (room: string): void {
    const state = this.rooms.get(room)
    this.rooms.delete(room)
    clearTimeout(state?.holdTimer)
    clearTimeout(state?.retryTimer)
    if (state?.waiters !== undefined) for (const waiter of state.waiters) waiter.resolve()
  }

  /** The broker closes: no hold or retry timer outlives it, and joins still waiting go on. */
  close (): void {
    for (const room of [...this.rooms.keys()]) this.untrack(room)
  }

  /**
   * Resolves once the room's seqs up to `position` were handed on (or the stream began a new life, or
   * the room was untracked); undefined when that is so already. Being behind here means the missing
   * messages are in flight or were missed, so a repair starts at once rather than at the next check.
   */
  until (room: string, position: StreamPosition): Promise<void> | undefined {
    const state = this.rooms.get(room)
    if (state === undefined || state.epoch !== position.epoch || state.last >= position.seq) return undefined
    return new Promise(resolve => {
      (state.waiters ??= []).push({ seq: position.seq, epoch: position.epoch, resolve })
      if (state.held === undefined) this.repair(room, state, [])
      else if (state.holdTimer !== undefined) this.repairHeld(room, state)
    })
  }

  tracked (): IterableIterator<string> {
    return this.rooms.keys()
  }

  /** The node's connection to the broker came back: anything may have been missed meanwhile. */
  markUrgent (room: string): void {
    const state = this.rooms.get(room)
    if (state !== undefined) state.urgent = true
  }

  accept (publication: Publication): void {
    const state = this.rooms.get(publication.room)
    if (state === undefined) return
    if (state.held !== undefined) {
      if (state.retryTimer !== undefined) {
        // A repair waits to read again: this may be the hole arriving late.
        if (publication.epoch === state.epoch) {
          this.insertHeld(state, publication)
          this.passContiguous(state)
        } else {
          state.held.push(publication)
        }
        if (state.held.length === 0) {
          clearTimeout(state.retryTimer)
          state.retryTimer = undefined
          this.release(publication.room, state)
        } else if (state.held.length >= HELD_MAX) {
          // A waiting repair holds no more than HELD_MAX: past it, the hole is reported now.
          this.giveUp(publication.room, state)
        } else if (state.waiters !== undefined) {
          this.wake(state)
        }
      } else if (state.holdTimer === undefined) {
        // A history read is in flight: what it leaves out follows when it is done.
        state.held.push(publication)
      } else if (publication.epoch !== state.epoch) {
        state.held.push(publication)
        this.repairHeld(publication.room, state)
      } else {
        this.hold(state, publication)
      }
      return
    }
    if (publication.epoch !== state.epoch) {
      if (state.pastEpochs?.has(publication.epoch) === true) {
        this.stats.duplicates++
        return
      }
      this.newLife(state, publication.epoch)
    }
    if (publication.seq <= state.last) {
      this.stats.duplicates++
    } else if (publication.seq === state.last + 1) {
      state.last = publication.seq
      this.sink.publication(publication)
      if (state.waiters !== undefined) this.wake(state)
    } else if (this.holdMs > 0) {
      state.held = [publication]
      state.holdTimer = setTimeout(() => { this.repairHeld(publication.room, state) }, this.holdMs)
    } else {
      this.repair(publication.room, state, [publication])
    }
  }

  /** A message while a hole waits: kept in seq order, and whatever became contiguous goes on. */
  private hold (state: RoomState, publication: Publication): void {
    this.insertHeld(state, publication)
    this.passContiguous(state)
    if ((state.held as Publication[]).length === 0) {
      clearTimeout(state.holdTimer)
      state.holdTimer = undefined
      state.held = undefined
    }
    if (state.waiters !== undefined) this.wake(state)
  }

  /** In seq order among the messages of its epoch, which stay ahead of any of a later life. */
  private insertHeld (state: RoomState, publication: Publication): void {
    const held = state.held as Publication[]
    let at = held.length
    while (at > 0 && ((held[at - 1] as Publication).epoch !== publication.epoch || (held[at - 1] as Publication).seq > publication.seq)) at--
    held.splice(at, 0, publication)
  }

  /** Hands on the held messages (in seq order) that follow the last one without a gap. */
  private passContiguous (state: RoomState): void {
    const held = state.held as Publication[]
    while (held.length > 0 && (held[0] as Publication).seq <= state.last + 1 && (held[0] as Publication).epoch === state.epoch) {
      const next = held.shift() as Publication
      if (next.seq <= state.last) {
        this.stats.duplicates++
        continue
      }
      state.last = next.seq
      this.sink.publication(next)
    }
  }

  /** Held messages pushed while a read was in flight, put in seq order; the contiguous ones go on. */
  private orderHeld (state: RoomState): void {
    const held = state.held
    if (held === undefined) return
    const [current, other] = [held.filter(p => p.epoch === state.epoch), held.filter(p => p.epoch !== state.epoch)]
    current.sort((a, b) => a.seq - b.seq)
    state.held = [...current, ...other]
    this.passContiguous(state)
  }

  /** The hole did not fill in time (or something waits for it): read it from history. */
  private repairHeld (room: string, state: RoomState): void {
    clearTimeout(state.holdTimer)
    state.holdTimer = undefined
    if (this.rooms.get(room) === state) this.repair(room, state, state.held ?? [])
  }

  /** A position check of the given rooms: reads their positions in one go and checks each; a failed read waits for the next round. */
  async checkRooms (rooms: readonly string[], positions: (rooms: readonly string[]) => Promise<StreamPosition[]>): Promise<void> {
    if (rooms.length === 0) return
    const found = await positions(rooms).catch(() => undefined)
    found?.forEach((position, i) => { this.check(rooms[i] as string, position) })
  }

  /** What a position check read for the room. */
  check (room: string, position: StreamPosition): void {
    const state = this.rooms.get(room)
    if (state === undefined || state.held !== undefined) return
    if (position.epoch !== state.epoch) {
      this.repair(room, state, [])
      return
    }
    if (position.seq <= state.last) {
      state.behindAt = undefined
      state.urgent = false
      return
    }
    // Behind: the messages may still be on their way, unless they were due at the previous check already.
    if (state.urgent || (state.behindAt !== undefined && state.behindAt > state.last)) {
      state.urgent = false
      this.repair(room, state, [])
      return
    }
    state.behindAt = position.seq
  }

  private repair (room: string, state: RoomState, held: Publication[]): void {
    state.held = held
    state.behindAt = undefined
    this.stats.repairs++
    this.attemptFill(room, state, 0)
  }

  /** Attempt `attempt` (0 first) of a repair; it may wait for live messages while retries are left. */
  private attemptFill (room: string, state: RoomState, attempt: number): void {
    const retriesLeft = attempt < this.retryDelaysMs.length
    this.fill(room, state, retriesLeft).then(filled => {
      if (filled) this.release(room, state)
      else this.retryLater(room, state, attempt)
    }, () => {
      if (this.rooms.get(room) !== state) return
      if (!retriesLeft || (state.held?.length ?? 0) >= HELD_MAX) {
        this.giveUp(room, state)
        return
      }
      this.retryLater(room, state, attempt)
    }).catch(() => {
      // A sink that threw must not leave the room held for ever.
      if (this.rooms.get(room) === state) this.release(room, state, false)
    })
  }

  private retryLater (room: string, state: RoomState, attempt: number): void {
    if (this.rooms.get(room) !== state) return
    this.orderHeld(state)
    this.stats.retries++
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined
      if (this.rooms.get(room) === state) this.attemptFill(room, state, attempt + 1)
    }, this.retryDelaysMs[attempt])
  }

  /** History stayed unreachable: what the held messages skip over is reported, then they go on. */
  private giveUp (room: string, state: RoomState): void {
    clearTimeout(state.retryTimer)
    state.retryTimer = undefined
    this.orderHeld(state)
    const next = state.held?.[0]
    if (next !== undefined && next.epoch === state.epoch && next.seq > state.last + 1) this.reportLost(room, state, next.seq - 1)
    this.release(room, state, false)
    // A join waits for seqs that could not be read: they are lost for this node's members as well.
    if (state.held !== undefined || state.waiters === undefined) return
    const wanted = state.waiters.reduce((most, waiter) => waiter.epoch === state.epoch ? Math.max(most, waiter.seq) : most, state.last)
    if (wanted > state.last) this.reportLost(room, state, wanted)
    this.wake(state)
  }

  /**
   * Reads the hole from history; false when history no longer has its start and, the broker not
   * ordering, the messages may still arrive live (`mayWaitForLive`): then nothing is reported yet.
   */
  private async fill (room: string, state: RoomState, mayWaitForLive: boolean): Promise<boolean> {
    for (;;) {
      const page = await this.read(room, { since: state.last, limit: REPAIR_PAGE })
      if (this.rooms.get(room) !== state) return true
      if (page.position.epoch !== state.epoch) {
        // A new life: the old positions are void and the new one is read from its start.
        this.newLife(state, page.position.epoch)
        this.sink.epoch(room, page.position.epoch)
        continue
      }
      const before = state.last
      const oldest = page.publications[0]?.seq ?? page.position.seq + 1
      if (oldest > state.last + 1 && page.position.seq > state.last) {
        if (mayWaitForLive && this.holdMs > 0) return false
        this.reportLost(room, state, Math.min(oldest, page.position.seq + 1) - 1)
      }
      for (const publication of page.publications) {
        if (publication.seq !== state.last + 1) continue
        state.last = publication.seq
        this.stats.filled++
        this.sink.publication(publication)
      }
      if (page.publications.length < REPAIR_PAGE || state.last >= page.position.seq) return true
      // A full page that moved nothing on does not match the stream: what it cannot give is lost.
      if (state.last === before) {
        this.reportLost(room, state, page.position.seq)
        return true
      }
    }
  }

  private reportLost (room: string, state: RoomState, to: number): void {
    this.stats.lost += to - state.last
    this.sink.lost(room, state.last + 1, to)
    state.last = to
  }

  /** After a repair: the held messages go on; a join still waiting for seqs gets another repair. */
  private release (room: string, state: RoomState, again = true): void {
    const held = state.held ?? []
    state.held = undefined
    if (this.rooms.get(room) !== state) return
    for (const publication of held) this.accept(publication)
    if (state.waiters === undefined) return
    this.wake(state)
    if (again && state.waiters !== undefined && state.held === undefined) this.repair(room, state, [])
  }

  private newLife (state: RoomState, epoch: string): void {
    if (state.pastEpochs === undefined) state.pastEpochs = new Set()
    state.pastEpochs.add(state.epoch)
    state.epoch = epoch
    state.last = 0
  }

  private wake (state: RoomState): void {
    const waiters = state.waiters as NonNullable<RoomState['waiters']>
    const waiting = waiters.filter(waiter => waiter.epoch === state.epoch && waiter.seq > state.last)
    state.waiters = waiting.length === 0 ? undefined : waiting
    for (const waiter of waiters) if (!waiting.includes(waiter)) waiter.resolve()
  }
}
