import calculateSlot from 'cluster-key-slot'

/**
 * Sends `items` in groups of one Redis Cluster hash slot (the slot of each item's first key), at
 * most `max` a group, in their order within a slot: a script call may only touch one slot.
 */
export function sendBySlot<T extends { keys: readonly string[] }>(
  items: readonly T[],
  max: number,
  send: (group: T[]) => void,
): void {
  const bySlot = new Map<number, T[]>()
  for (const item of items) {
    const slot = calculateSlot(item.keys[0]!)
    let group = bySlot.get(slot)
    if (group === undefined) {
      group = []
      bySlot.set(slot, group)
    }
    group.push(item)
    if (group.length >= max) {
      send(group)
      bySlot.delete(slot)
    }
  }
  for (const group of bySlot.values()) send(group)
}
