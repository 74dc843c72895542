/**
 * Names the JIT code in a callgrind output file. callgrind knows V8's generated code by address
 * only (`fn=(12) 0x000000000d17a480`); V8 writes what it put where to `/tmp/perf-<pid>.map` when
 * node runs with `--perf-basic-prof` (bench/gateway-instructions.ts --keep saves both). This
 * rewrites every such name to the function the map says covers the address (the entry written
 * last wins: V8 reuses the space of code it dropped), keeping the address, so that
 * callgrind_annotate can sum by JavaScript function:
 *
 *   npx tsx bench/callgrind-names.ts <out.callgrind> <perf.map> > named.callgrind
 *   callgrind_annotate --inclusive=yes named.callgrind | head -80
 */
import { readFileSync } from 'node:fs'

const [outFile, mapFile] = process.argv.slice(2)
if (outFile === undefined || mapFile === undefined) {
  console.error('usage: callgrind-names.ts <out.callgrind> <perf.map>')
  process.exit(2)
}
const entries = readFileSync(mapFile, 'utf8')
  .split('\n')
  .flatMap((line) => {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
    return m === null
      ? []
      : [{ start: Number.parseInt(m[1]!, 16), end: 0, name: m[3]! }].map((e) => {
          e.end = e.start + Number.parseInt(m[2]!, 16)
          return e
        })
  })
const named = new Map<string, string>()
function nameOf(hex: string): string {
  let name = named.get(hex)
  if (name !== undefined) return name
  const at = Number.parseInt(hex, 16)
  name = hex
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!
    if (at >= e.start && at < e.end) {
      name = `${e.name} [${hex}]`
      break
    }
  }
  named.set(hex, name)
  return name
}
const text = readFileSync(outFile, 'utf8').replace(
  /^((?:c?fn)=\(\d+\)) (0x[0-9a-f]+)$/gm,
  (_, head: string, hex: string) => `${head} ${nameOf(hex)}`,
)
process.stdout.write(text)
