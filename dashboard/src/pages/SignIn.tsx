/** Sign-in with the admin token (kept in this tab only), and the page for an admin API that is off. */
import { useState } from 'preact/hooks'
import { ApiError, call } from '../api'
import { duration } from '../format'
import { signIn } from '../session'
import type { Status } from '../types'
import { PageTitle } from '../ui/common'

export function AdminOff() {
  return (
    <main id="main" class="narrow" tabIndex={-1}>
      <PageTitle text="Admin API off">The admin API is off</PageTitle>
      <p>
        This server has no admin token, so its admin API — and this dashboard with it — is turned off. Nothing
        is open without one.
      </p>
      <h2>To turn it on</h2>
      <ol>
        <li>
          Make a token (at least 16 characters), e.g.
          <pre>
            <code>
              node -e "console.log('sk-sluice-admin-' +
              require('crypto').randomBytes(32).toString('base64url'))"
            </code>
          </pre>
        </li>
        <li>
          Start the gateway with it in <code>SLUICE_ADMIN_TOKEN</code>, or write only its SHA-256 in{' '}
          <code>sluice.yaml</code> as{' '}
          <code>
            admin: {'{'} tokenHash: … {'}'}
          </code>
          :
          <pre>
            <code>printf '%s' "$TOKEN" | sha256sum</code>
          </pre>
        </li>
        <li>Restart, reload this page and sign in with the token.</li>
      </ol>
    </main>
  )
}

export function SignIn(props: { reason?: string; onAdminOff: () => void }) {
  const [value, setValue] = useState('')
  const [error, setError] = useState<string | undefined>(props.reason)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    const candidate = value.trim()
    if (candidate === '') {
      setError('Enter the admin token.')
      return
    }
    setBusy(true)
    setError(undefined)
    try {
      // Tried before it is kept: a wrong token never reaches the session.
      await call<Status>('GET', 'status', { bearer: candidate })
      setValue('')
      signIn(candidate)
    } catch (err) {
      setBusy(false)
      if (err instanceof ApiError && err.code === 'admin_api_off') return props.onAdminOff()
      if (err instanceof ApiError && err.status === 401) setError('That admin token is wrong.')
      else if (err instanceof ApiError && err.status === 429)
        setError(
          `Too many failed sign-ins from this address: try again in ${duration(err.retryAfterMs ?? 60_000)}.`,
        )
      else setError(err instanceof Error ? err.message : String(err))
    }
  }
  return (
    <main id="main" class="narrow" tabIndex={-1}>
      <PageTitle text="Sign in">sluice dashboard</PageTitle>
      <form class="card signin" method="post" onSubmit={submit} noValidate>
        <h2>Sign in</h2>
        <div class="field">
          <label for="admin-token">Admin token</label>
          <input
            id="admin-token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            required
            value={value}
            aria-invalid={error ? true : undefined}
            aria-describedby="token-hint"
            onInput={(e) => setValue(e.currentTarget.value)}
          />
          <p class="hint" id="token-hint">
            The token the gateway was started with (<code>SLUICE_ADMIN_TOKEN</code>). It is kept in this tab
            only and sent in an Authorization header, never in a URL.
          </p>
        </div>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  )
}
