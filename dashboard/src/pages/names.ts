/** Key names for key ids (the ledger and usage speak of ids): read once per id, kept for the session. */
import { useEffect, useState } from 'preact/hooks'
import { get, seg } from '../api'
import type { Key } from '../types'

const known = new Map<string, string>()
const asked = new Set<string>()

export function rememberKey(key: Pick<Key, 'id' | 'name'>): void {
  known.set(key.id, key.name)
}

export function useKeyNames(ids: string[]): Map<string, string> {
  const [, setVersion] = useState(0)
  const wanted = ids.filter((id) => !asked.has(id) && /^[a-z2-7]{10}$/.test(id))
  const signature = wanted.join(',')
  useEffect(() => {
    if (wanted.length === 0) return
    for (const id of wanted) asked.add(id)
    let alive = true
    void Promise.all(
      wanted.map((id) =>
        get<Key>(`keys/${seg(id)}`)
          .then((k) => rememberKey(k))
          .catch(() => {}),
      ),
    ).then(() => alive && setVersion((v) => v + 1))
    return () => {
      alive = false
    }
  }, [signature])
  return known
}
