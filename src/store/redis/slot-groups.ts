import calculateSlot from 'cluster-key-slot'

/**
 * Sends `items` in groups of at most `max`, in their order; on a Redis Cluster (`cluster`) each
 * group of one hash slot (the slot of each item's first key): a script call may only touch one
 * slot there, while one Redis takes any mix.
 */
export function sendBySlot<T extends { keys: readonly string[] }>(
  items: readonly T[],
  max: number,
  cluster: boolean,
  send: (group: T[]) => void,
): void {
  if (!cluster) {
    for (let i = 0; i < items.length; i += max) send(items.slice(i, i + max))
    return
  }
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
