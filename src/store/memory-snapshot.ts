/**
 * A MemoryStore's counts in a file, so that an embedded gateway forgets nothing on restart: written
 * on shutdown and every second while serving (a `kill -9` loses at most that second), read back
 * before serving. Times in the state are epoch milliseconds, so they mean the same in the next
 * process. Concurrency leases are not kept: the calls that held them ended with the process.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { MemoryStore } from './memory.js'
import { Boxed, boxBytes, extraBytes, Mixed, packedBytes, type Slot, valueBytes } from './memory-layout.js'

export const SNAPSHOT_VERSION = 1

export interface MemorySnapshot {
  version: number
  /** Epoch ms when it was taken: counts charged after this are not in it. */
  takenAt: number
  /** [key, packed numbers] | [key, numbers, per-limit extras] | [key, boxed value, expiry]. */
  entries: unknown[][]
}

const MAP_TAG = '__map'

function encode(value: unknown): unknown {
  if (value instanceof Map) return { [MAP_TAG]: [...value] }
  return value
}

function isLeases(value: unknown): boolean {
  return value instanceof Map || (typeof value === 'object' && value !== null && MAP_TAG in value)
}

/** The store's live entries as JSON-able data. */
export function takeSnapshot(store: MemoryStore, now = Date.now()): MemorySnapshot {
  const entries: unknown[][] = []
  store.forEachEntry((key, slot) => {
    if (Array.isArray(slot)) entries.push([key, slot])
    else if (slot instanceof Mixed) entries.push([key, slot.nums, slot.extra.map(encode)])
    else if (!isLeases(slot.value)) entries.push([key, encode(slot.value), slot.expiresAt, 'b'])
  })
  return { version: SNAPSHOT_VERSION, takenAt: now, entries }
}

/** Puts a snapshot's entries that are still live back into the store; returns how many. */
export function restoreSnapshot(store: MemoryStore, snapshot: MemorySnapshot, now = Date.now()): number {
  if (snapshot.version !== SNAPSHOT_VERSION || !Array.isArray(snapshot.entries)) {
    throw new Error(`not a sluice memory snapshot of version ${SNAPSHOT_VERSION}`)
  }
  let restored = 0
  for (const entry of snapshot.entries) {
    const [key, first, second, tag] = entry as [string, unknown, unknown, unknown]
    if (typeof key !== 'string') continue
    let slot: Slot
    let bytes: number
    if (tag === 'b') {
      const expiresAt = Number(second)
      if (!(expiresAt > now)) continue
      const box = boxBytes(key)
      const value = first
      slot = new Boxed(value, expiresAt, box, valueBytes(value))
      bytes = box + valueBytes(value)
    } else if (Array.isArray(first) && second === undefined) {
      if (!(Number(first[0]) > now)) continue
      slot = first as number[]
      bytes = packedBytes(key, first.length)
    } else if (Array.isArray(first) && Array.isArray(second)) {
      if (!(Number(first[0]) > now)) continue
      // Leases belonged to calls of the process that wrote the snapshot: they are over.
      const extra = second.map((x) => (isLeases(x) ? undefined : x))
      const base = packedBytes(key, first.length)
      bytes = base + extraBytes(extra)
      slot = new Mixed(first as number[], extra, base, bytes)
    } else continue
    store.restoreEntry(key, slot, bytes)
    restored++
  }
  return restored
}

/**
 * Writes the snapshot next to its final path, then renames it over: a crash never leaves half a
 * file. The text is made at once (the store's arrays change with the next request).
 */
export async function writeSnapshot(path: string, snapshot: MemorySnapshot): Promise<void> {
  const text = JSON.stringify(snapshot)
  await mkdir(dirname(path), { recursive: true })
  const temporary = `${path}.${process.pid}.tmp`
  await writeFile(temporary, text)
  await rename(temporary, path)
}

/** The snapshot at `path`, or undefined when there is none. A malformed file throws. */
export async function readSnapshot(path: string): Promise<MemorySnapshot | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  return JSON.parse(text) as MemorySnapshot
}
