/** Exponential backoff with full jitter: a random delay up to min(max, min × 2^attempt). */
export function backoffDelay (attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}
