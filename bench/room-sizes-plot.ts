import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { writePng } from './png.js'
import { median } from './stats.js'

const { values: flags } = parseArgs({
  options: {
    in: { type: 'string', default: 'bench/results/room-sizes.json' },
    out: { type: 'string', default: 'docs/room-sizes.png' }
  }
})

interface Row { size: number, server: string, deliveriesPerSec: number, p99Ms: number, serverCpuPct: number }

/** bench/room-sizes.ts results as three charts over room size (log scale), one line per server, medians of the repeats. */
const { rows, offered, started } = JSON.parse(readFileSync(flags.in, 'utf8')) as { rows: Row[], offered: number, started: string }
const sizes = [...new Set(rows.map(row => row.size))].sort((a, b) => a - b)
const servers = [...new Set(rows.map(row => row.server))]
const COLORS = ['#1f5fa8', '#c0392b', '#27864a', '#8e44ad', '#d68910']
const WIDTH = 900
const PANEL = 170
const LEFT = 70
const RIGHT = WIDTH - 160
const x = (size: number): number => {
  const [low, high] = [Math.log10(sizes[0] as number), Math.log10(sizes.at(-1) as number)]
  return LEFT + (high === low ? 0 : (Math.log10(size) - low) / (high - low)) * (RIGHT - LEFT)
}
const value = (server: string, size: number, key: keyof Row): number => median(rows.filter(row => row.server === server && row.size === size).map(row => row[key] as number))

const charts: { key: keyof Row, label: string }[] = [
  { key: 'deliveriesPerSec', label: `deliveries/s (offered ${offered})` },
  { key: 'p99Ms', label: 'p99 latency (ms)' },
  { key: 'serverCpuPct', label: 'server CPU (% of a core)' }
]
const panels = charts.map(({ key, label }, index) => {
  const top = 50 + index * (PANEL + 45)
  const max = Math.max(...servers.flatMap(server => sizes.map(size => value(server, size, key)))) * 1.1
  const y = (v: number): number => top + PANEL - v / max * PANEL
  const lines = servers.map((server, s) => {
    const color = COLORS[s % COLORS.length] as string
    const points = sizes.map(size => `${x(size)},${y(value(server, size, key))}`).join(' ')
    const dots = sizes.map(size => `<circle cx="${x(size)}" cy="${y(value(server, size, key))}" r="3" fill="${color}"/>`).join('')
    return `<polyline points="${points}" fill="none" stroke="${color}" stroke-width="2"/>${dots}`
  }).join('\n')
  const ticks = sizes.map(size => `<text x="${x(size)}" y="${top + PANEL + 14}" font-size="11" text-anchor="middle">${size}</text>`).join('')
  return `<text x="${LEFT}" y="${top - 8}" font-size="13">${label}</text>
  <rect x="${LEFT}" y="${top}" width="${RIGHT - LEFT}" height="${PANEL}" fill="none" stroke="#ccc"/>
  <text x="${LEFT - 6}" y="${top + 10}" font-size="10" text-anchor="end">${Number(max.toPrecision(3))}</text><text x="${LEFT - 6}" y="${top + PANEL}" font-size="10" text-anchor="end">0</text>
  ${ticks}
  ${lines}`
})
const legend = servers.map((server, s) => `<rect x="${RIGHT + 20}" y="${60 + s * 20}" width="12" height="12" fill="${COLORS[s % COLORS.length]}"/><text x="${RIGHT + 38}" y="${71 + s * 20}" font-size="12">${server}</text>`).join('')
const height = 60 + charts.length * (PANEL + 45)
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${LEFT}" y="22" font-size="14" font-weight="bold">One room of N members (x, log scale) at ${offered} deliveries/s offered; ${started.slice(0, 16)} UTC</text>
${panels.join('\n')}
${legend}
</svg>`
await writePng(svg, WIDTH, height, flags.out)
console.log(`wrote ${flags.out}`)
