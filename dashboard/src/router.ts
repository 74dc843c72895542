/** Routes in the URL's fragment (#/keys/ab12…): the page is one file, and no server route is needed. */
import { useEffect, useState } from 'preact/hooks'

export type Route =
  | { page: 'overview' }
  | { page: 'keys' }
  | { page: 'key'; id: string }
  | { page: 'teams' }
  | { page: 'team'; id: string }
  | { page: 'alerts' }
  | { page: 'detections' }
  | { page: 'missing'; path: string }

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/'
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p)
      } catch {
        return p
      }
    })
  if (parts.length === 0) return { page: 'overview' }
  if (parts[0] === 'keys' && parts.length === 1) return { page: 'keys' }
  if (parts[0] === 'keys' && parts.length === 2) return { page: 'key', id: parts[1]! }
  if (parts[0] === 'teams' && parts.length === 1) return { page: 'teams' }
  if (parts[0] === 'teams' && parts.length === 2) return { page: 'team', id: parts[1]! }
  if (parts[0] === 'alerts' && parts.length === 1) return { page: 'alerts' }
  if (parts[0] === 'detections' && parts.length === 1) return { page: 'detections' }
  return { page: 'missing', path }
}

export const href = {
  overview: () => '#/',
  keys: () => '#/keys',
  key: (id: string) => `#/keys/${encodeURIComponent(id)}`,
  teams: () => '#/teams',
  team: (id: string) => `#/teams/${encodeURIComponent(id)}`,
  alerts: () => '#/alerts',
  detections: () => '#/detections',
}

/** `key:<id>` → the key's page; other subjects have none. */
export function subjectHref(subject: string | null): string | undefined {
  return subject?.startsWith('key:') ? href.key(subject.slice(4)) : undefined
}

export function navigate(to: string): void {
  window.location.hash = to
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash))
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash))
    window.addEventListener('hashchange', update)
    return () => window.removeEventListener('hashchange', update)
  }, [])
  return route
}
