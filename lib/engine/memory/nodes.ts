import type { NodeInfo, NodeRegistry } from '../types.js'

/** One node: the registry lists only this one. */
export class LocalNodeRegistry implements NodeRegistry {
  private self: (() => NodeInfo) | undefined

  announce (self: () => NodeInfo): void {
    this.self = self
  }

  list (): NodeInfo[] {
    return this.self === undefined ? [] : [this.self()]
  }

  close (): void {
    this.self = undefined
  }
}
