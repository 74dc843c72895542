import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

/**
 * Run in a process of its own, with V8's natives syntax (%HaveSameMap) and gc(): whether the kept
 * object shares the hidden class of the tick objects process.nextTick() makes, before and after
 * full GCs at moments when no tick is queued (the GCs that, with nothing keeping those maps, free
 * them and leave nextTick's feedback megamorphic).
 */
const CHILD = `
const { tickShape } = await import(${JSON.stringify(new URL('../../src/gateway/tick-maps.ts', import.meta.url).href)})
const { createHook } = await import('node:async_hooks')
function tick() {
  let made
  const hook = createHook({ init(id, type, trigger, resource) { if (type === 'TickObject') made = resource } }).enable()
  process.nextTick(() => {})
  hook.disable()
  return made
}
const before = %HaveSameMap(tick(), tickShape)
for (let i = 0; i < 5; i++) {
  await new Promise((resolve) => setTimeout(resolve, 5))
  globalThis.gc()
}
const after = %HaveSameMap(tick(), tickShape)
process.stdout.write(JSON.stringify({ kept: tickShape !== undefined, before, after }))
`

describe('tickShape', () => {
  it("has the hidden class of process.nextTick's tick objects, and keeps it through full GCs", () => {
    const out = execFileSync(
      process.execPath,
      ['--allow-natives-syntax', '--expose-gc', '--import', 'tsx', '--input-type=module', '-e', CHILD],
      { encoding: 'utf8' },
    )
    expect(JSON.parse(out)).toEqual({ kept: true, before: true, after: true })
  })
})
