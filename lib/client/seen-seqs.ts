/**
 * Which seqs of one room's stream the app has had, or will never get: everything up to `watermark`,
 * and the seqs seen above it (a higher priority may overtake a lower one, so they can arrive out of
 * order). A recovering rejoin asks for everything after the watermark; what it replays that was
 * already seen is dropped here.
 */
export class SeenSeqs {
  private above = new Set<number>()

  constructor (public watermark: number) {}

  /** True the first time `seq` is marked. */
  mark (seq: number): boolean {
    if (seq <= this.watermark || this.above.has(seq)) return false
    this.above.add(seq)
    while (this.above.delete(this.watermark + 1)) this.watermark++
    return true
  }

  has (seq: number): boolean {
    return seq <= this.watermark || this.above.has(seq)
  }

  reset (watermark: number): void {
    this.watermark = watermark
    this.above = new Set()
  }
}
