import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { writePng } from './png.js'

const { values: flags } = parseArgs({
  options: {
    in: { type: 'string', default: 'bench/results/soak.json' },
    out: { type: 'string', default: 'docs/soak.png' }
  }
})

/** Renders a soak run's samples (bench/soak.ts) as four stacked line charts, into a PNG through Chromium. */
const { summary, samples } = JSON.parse(readFileSync(flags.in, 'utf8')) as { summary: Record<string, unknown>, samples: Record<string, number>[] }
const WIDTH = 900
const PANEL = 150
const series: { key: string, label: string }[] = [
  { key: 'rssMiB', label: 'RSS (MiB)' },
  { key: 'heapMiB', label: 'heap used (MiB)' },
  { key: 'heapTotalMiB', label: 'V8 heap committed (MiB)' },
  { key: 'connections', label: 'open connections' },
  { key: 'lagP99Ms', label: 'event-loop lag p99 (ms)' }
]
const tMax = Math.max(...samples.map(sample => sample.t as number), 1)
const panels = series.map(({ key, label }, index) => {
  // Runs from before a series was recorded lack it.
  const values = samples.map(sample => sample[key] ?? 0)
  const max = Math.max(...values, 1) * 1.1
  const top = 40 + index * (PANEL + 30)
  const points = samples.map(sample => `${60 + (sample.t as number) / tMax * (WIDTH - 80)},${top + PANEL - (sample[key] as number) / max * PANEL}`).join(' ')
  return `<text x="60" y="${top - 6}" font-size="13">${label}: ${values[0]} at start, ${values.at(-1)} at the end, at most ${Math.max(...values)}</text>
  <rect x="60" y="${top}" width="${WIDTH - 80}" height="${PANEL}" fill="none" stroke="#ccc"/>
  <text x="52" y="${top + 10}" font-size="10" text-anchor="end">${max.toFixed(0)}</text><text x="52" y="${top + PANEL}" font-size="10" text-anchor="end">0</text>
  <polyline points="${points}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>`
})
const height = 60 + series.length * (PANEL + 30)
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="60" y="20" font-size="14" font-weight="bold">Soak: ${summary.connections} connections, ${summary.rooms} rooms, ${summary.seconds} s; lost to readers: ${summary.lostToReaders}</text>
${panels.join('\n')}
<text x="${WIDTH - 20}" y="${height - 8}" font-size="11" text-anchor="end">seconds → ${tMax}</text>
</svg>`
await writePng(svg, WIDTH, height, flags.out)
console.log(`wrote ${flags.out}`)
