/**
 * The admin token, kept in this tab's sessionStorage only: never in a URL, a cookie, localStorage
 * or a log. It leaves the page only in the Authorization header of calls to /admin/v1.
 */
const KEY = 'sluice.adminToken'
type Listener = (signedIn: boolean, reason?: string) => void
const listeners = new Set<Listener>()

export function token(): string | null {
  try {
    return sessionStorage.getItem(KEY)
  } catch {
    return null
  }
}

export function signIn(value: string): void {
  sessionStorage.setItem(KEY, value)
  for (const l of listeners) l(true)
}

/** Forgets the token; `reason` is shown on the sign-in page (e.g. the token stopped working). */
export function signOut(reason?: string): void {
  sessionStorage.removeItem(KEY)
  for (const l of listeners) l(false, reason)
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}
