/**
 * Slots a drained queue keeps for its next burst. Emptying an array by setting its length to 0 frees
 * its storage, and the next push allocated it again; a larger array is let go, so that a queue does
 * not keep the storage of its longest burst.
 */
const KEPT_SLOTS = 16

/** FIFO with an advancing head, compacted now and then, so shift() is O(1) amortised. */
export class Fifo<T> {
  /** Entries from `head` to `tail`; readable in place (the outbox replaces a queued frame there). */
  items: (T | undefined)[] = []
  head = 0
  tail = 0

  push (item: T): void {
    this.items[this.tail++] = item
  }

  shift (): T | undefined {
    if (this.head === this.tail) return undefined
    const item = this.items[this.head] as T
    this.items[this.head++] = undefined
    if (this.head === this.tail) {
      this.head = 0
      this.tail = 0
      if (this.items.length > KEPT_SLOTS) this.items = []
    } else if (this.head >= 1024 && this.head * 2 >= this.tail) {
      this.items = this.items.slice(this.head, this.tail)
      this.tail -= this.head
      this.head = 0
    }
    return item
  }

  /** Empties the queue and returns what it held, oldest first. */
  drain (): T[] {
    const rest = this.items.slice(this.head, this.tail) as T[]
    this.items = []
    this.head = 0
    this.tail = 0
    return rest
  }
}
