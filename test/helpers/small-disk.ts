import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A real, tiny file system (tmpfs) that can be filled up and freed again: a full disk without mocks. */
export interface SmallDisk {
  dir: string
  /** Fills the disk, then frees about `leaveBytes` (rounded to pages), so that writes run out soon. */
  fill(leaveBytes?: number): void
  /** Frees all the room the filler took. */
  free(): void
  unmount(): void
}

/**
 * Mounts a tmpfs of `sizeBytes` (needs root, or CAP_SYS_ADMIN); undefined where that is not
 * allowed, so that tests can skip with a reason instead of failing.
 */
export function mountSmallDisk(sizeBytes = 64 * 1024): SmallDisk | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    rmSync(dir, { recursive: true, force: true })
    return undefined
  }
  const filler = join(dir, '.filler')
  return {
    dir,
    fill(leaveBytes = 0) {
      const fd = openSync(filler, 'a')
      const chunk = Buffer.alloc(4096, 0x2e)
      try {
        for (;;) writeSync(fd, chunk)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      } finally {
        closeSync(fd)
      }
      const size = statSync(filler).size
      truncateSync(filler, Math.max(0, size - leaveBytes))
    },
    free() {
      rmSync(filler, { force: true })
    },
    unmount() {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/** Whether this machine lets the tests mount a tmpfs (checked once). */
export const canMountSmallDisk: boolean = (() => {
  const disk = mountSmallDisk(4096)
  disk?.unmount()
  return disk !== undefined
})()
