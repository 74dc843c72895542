/** True when a charge leaving `remaining` moved usage from below `threshold` (0..1) to at or above it. */
export function crossedThreshold(limit: number, remaining: number, cost: number, threshold: number): boolean {
  const mark = limit * threshold
  return cost > 0 && limit - (remaining + cost) < mark && limit - remaining >= mark
}
