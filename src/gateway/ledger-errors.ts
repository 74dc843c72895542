import { statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** The nearest existing ancestor of `path` that is not a directory, if any (why mkdir failed). */
function fileInTheWay(path: string): string | undefined {
  let current = dirname(resolve(path))
  for (;;) {
    try {
      return statSync(current).isDirectory() ? undefined : current
    } catch {
      const parent = dirname(current)
      if (parent === current) return undefined
      current = parent
    }
  }
}

/**
 * Why a file cannot be opened for appending, in words an operator can act on (Node's own message
 * for a path through a file is "EEXIST: file already exists, mkdir …", which says nothing useful).
 */
export function describeFsError(path: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  const where = resolve(path)
  switch (code) {
    case 'EEXIST':
    case 'ENOTDIR': {
      const file = fileInTheWay(path)
      return file === undefined
        ? `cannot create ${where}: a part of the path is not a directory`
        : `cannot create ${where}: ${file} is a file, not a directory`
    }
    case 'EISDIR':
      return `cannot write ${where}: it is a directory (give the path of a file)`
    case 'EACCES':
    case 'EPERM':
      return `cannot write ${where}: permission denied`
    case 'EROFS':
      return `cannot write ${where}: the file system is read-only`
    case 'ENOENT':
      return `cannot create ${where}: a directory on the way does not exist and cannot be made`
    default:
      return `cannot write ${where}: ${(error as Error).message}`
  }
}
