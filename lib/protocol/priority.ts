/** Delivery priority; lower numbers drain first. The numeric values are part of the wire protocol (aliases 0–3). */
export const Priority = {
  critical: 0,
  high: 1,
  normal: 2,
  low: 3
} as const

export type Priority = (typeof Priority)[keyof typeof Priority]
export type PriorityName = keyof typeof Priority

export const PRIORITY_NAMES: readonly PriorityName[] = ['critical', 'high', 'normal', 'low']
export const PRIORITY_LEVELS = PRIORITY_NAMES.length

/** Accepts a level name or its numeric alias; returns undefined for anything else. */
export function parsePriority (value: unknown): Priority | undefined {
  if (typeof value === 'string') {
    return Object.hasOwn(Priority, value) ? Priority[value as PriorityName] : undefined
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < PRIORITY_LEVELS) {
    return value as Priority
  }
  return undefined
}
