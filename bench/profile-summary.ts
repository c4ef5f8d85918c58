import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/**
 * Self time per function (name + script) from a V8 .cpuprofile (what `node --cpu-prof` writes).
 *
 *   node --import=tsx bench/profile-summary.ts [--top=25] [--skip=MS] <file.cpuprofile | directory>
 *
 * --skip leaves out the first MS milliseconds of samples (start-up, module loading, connecting), so that
 * the table shows the steady state.
 * Given a directory it reads the largest profile in it, which is the main thread's when worker threads
 * wrote their own, smaller ones.
 */

interface CallFrame {
  functionName: string
  url: string
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, skip: { type: 'string', default: '0' } }, allowPositionals: true })
const target = positionals[0]
if (target === undefined) {
  console.error('usage: node --import=tsx bench/profile-summary.ts [--top=N] [--skip=MS] <file.cpuprofile | directory>')
  process.exit(2)
}

function pickProfile (path: string): string {
  if (!statSync(path).isDirectory()) return path
  const profiles = readdirSync(path).filter(name => name.endsWith('.cpuprofile')).map(name => join(path, name))
  if (profiles.length === 0) throw new Error(`no .cpuprofile in ${path}`)
  return profiles.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a))
}

const root = process.cwd()
const shorten = (path: string): string => {
  const inside = relative(root, path)
  return inside.startsWith('..') ? path : inside
}
// Keyed by name and file only: line numbers from tsx-transformed modules are those of the generated code.
function location ({ url }: CallFrame): string {
  if (url === '') return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  return path.startsWith('/') ? shorten(path) : path
}

const file = pickProfile(resolve(target))
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
const frames = new Map(profile.nodes.map(node => [node.id, node.callFrame]))

// A sample stands for the time until the next one; the last one for the time until the profile ended.
const selfMicros = new Map<string, number>()
let timestamp = profile.startTime
const sampleTimes = profile.timeDeltas.map(delta => (timestamp += delta))
const sampleFrom = profile.startTime + Number(values.skip) * 1000
let totalMicros = 0
for (let i = 0; i < profile.samples.length; i++) {
  if ((sampleTimes[i] as number) < sampleFrom) continue
  const duration = (sampleTimes[i + 1] ?? profile.endTime) - (sampleTimes[i] as number)
  if (duration <= 0) continue
  const frame = frames.get(profile.samples[i] as number)
  if (frame === undefined) continue
  const key = `${frame.functionName || '(anonymous)'}\t${location(frame)}`
  selfMicros.set(key, (selfMicros.get(key) ?? 0) + duration)
  totalMicros += duration
}

const idle = [...selfMicros].filter(([key]) => key.startsWith('(idle)')).reduce((sum, [, us]) => sum + us, 0)
const top = [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))
console.log(`${shorten(file)}: ${(totalMicros / 1000).toFixed(0)} ms sampled, ${(100 * idle / totalMicros).toFixed(1)} % idle`)
console.log('self ms   self %  busy %  function  location')
for (const [key, micros] of top) {
  const [name, where] = key.split('\t')
  const busy = key.startsWith('(idle)') ? '' : (100 * micros / (totalMicros - idle)).toFixed(1)
  console.log(`${(micros / 1000).toFixed(1).padStart(7)}  ${(100 * micros / totalMicros).toFixed(1).padStart(6)}  ${busy.padStart(6)}  ${name}  ${where}`)
}
