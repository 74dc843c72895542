/**
 * Keeps the hidden classes ("maps") of Node's `process.nextTick` objects alive for the life of the
 * process. nextTick builds each tick as `{ [async_id_symbol]: …, [trigger_async_id_symbol]: …,
 * callback, args }`; V8 defines computed keys of an object literal through a feedback slot that
 * remembers the map the object had (weakly) and turns megamorphic, for good, the first time it sees
 * another — including when that map was collected. A tick object lives for one turn, so a full GC
 * (after its 2 GCs of grace) at a moment when no tick is queued frees the maps after the first key,
 * and from then on each tick's last three keys are added by V8's runtime (~1,300 instructions
 * each). Node's streams make a dozen ticks per gateway call: ~60,000 instructions a call, 12 % of
 * the gateway's count, paid by a process that went through a few full GCs — a gateway that loads
 * more and keeps more than a bare proxy does. An object built by the same literal shape, kept
 * here, holds the same maps, so they are never collected and the slots stay monomorphic.
 */
import { AsyncResource } from 'node:async_hooks'

function makeTickShape(): object | undefined {
  // Node's symbols for an async id and its trigger: own properties of any AsyncResource.
  const resource = new AsyncResource('sluice.tick-maps', { requireManualDestroy: true })
  const fields = resource as unknown as Record<symbol, unknown>
  const symbols = Object.getOwnPropertySymbols(resource)
  const asyncId = symbols.find((s) => s.description === 'async_id_symbol')
  const triggerId = symbols.find((s) => s.description === 'trigger_async_id_symbol')
  // Ended at once for the async hooks an application may run (it never does anything).
  resource.emitDestroy()
  if (asyncId === undefined || triggerId === undefined) return undefined
  // The values are of the kinds nextTick stores (numbers from Node's async id counter): a value of
  // another representation would make V8 replace the maps instead of sharing them.
  return { [asyncId]: fields[asyncId], [triggerId]: fields[triggerId], callback: noop, args: undefined }
}

function noop(): void {}

/** Built on import, never released: as nextTick builds a tick (undefined where Node names the keys otherwise). */
export const tickShape: object | undefined = makeTickShape()
