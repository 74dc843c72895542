/**
 * The sluice dashboard: a page served by the gateway at /dashboard/ that talks only to /admin/v1 on
 * the same origin, with the admin token from this tab's sessionStorage.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './layout.css'
import './components.css'
import { Alerts } from './pages/Alerts'
import { Detections } from './pages/Detections'
import { KeyPage } from './pages/KeyPage'
import { Keys } from './pages/Keys'
import { Overview } from './pages/Overview'
import { AdminOff, SignIn } from './pages/SignIn'
import { TeamPage } from './pages/TeamPage'
import { Teams } from './pages/Teams'
import { href, type Route, useRoute } from './router'
import { onSessionChange, signOut, token } from './session'
import { startFeed, stopFeed, useFeed } from './stream'
import { PageTitle } from './ui/common'

/** What the server said of its admin API when it served this page (`off`: no token configured). */
const adminState = document.querySelector<HTMLMetaElement>('meta[name="sluice-admin-api"]')?.content

function Nav(props: { route: Route }) {
  const feed = useFeed()
  const current = (page: Route['page'][]) => (page.includes(props.route.page) ? 'page' : undefined)
  return (
    <header class="top">
      <a class="brand" href={href.overview()}>
        sluice
      </a>
      <nav aria-label="Main">
        <ul>
          <li>
            <a href={href.overview()} aria-current={current(['overview'])}>
              Overview
            </a>
          </li>
          <li>
            <a href={href.keys()} aria-current={current(['keys', 'key'])}>
              Keys
            </a>
          </li>
          <li>
            <a href={href.teams()} aria-current={current(['teams', 'team'])}>
              Teams
            </a>
          </li>
          <li>
            <a href={href.alerts()} aria-current={current(['alerts'])}>
              Alerts
              {feed.unseen > 0 && props.route.page !== 'alerts' && (
                <>
                  <span class="count" aria-hidden="true">
                    {feed.unseen > 99 ? '99+' : feed.unseen}
                  </span>
                  <span class="sr-only"> ({feed.unseen} new)</span>
                </>
              )}
            </a>
          </li>
          <li>
            <a href={href.detections()} aria-current={current(['detections'])}>
              Detections
            </a>
          </li>
        </ul>
      </nav>
      <button type="button" class="signout" onClick={() => signOut()}>
        Sign out
      </button>
    </header>
  )
}

function Page(props: { route: Route }) {
  const r = props.route
  switch (r.page) {
    case 'overview':
      return <Overview />
    case 'keys':
      return <Keys />
    case 'key':
      return <KeyPage id={r.id} key={r.id} />
    case 'teams':
      return <Teams />
    case 'team':
      return <TeamPage id={r.id} key={r.id} />
    case 'alerts':
      return <Alerts />
    case 'detections':
      return <Detections />
    default:
      return (
        <>
          <PageTitle text="Not found">Not found</PageTitle>
          <p>
            Nothing here. <a href={href.overview()}>Back to the overview</a>
          </p>
        </>
      )
  }
}

function App() {
  const route = useRoute()
  const [signedIn, setSignedIn] = useState(() => token() !== null)
  const [reason, setReason] = useState<string | undefined>(undefined)
  const [off, setOff] = useState(adminState === 'off')
  useEffect(
    () =>
      onSessionChange((now, why) => {
        setSignedIn(now)
        setReason(why)
      }),
    [],
  )
  useEffect(() => {
    if (signedIn && !off) startFeed()
    else stopFeed()
  }, [signedIn, off])
  if (off) return <AdminOff />
  if (!signedIn) return <SignIn reason={reason} onAdminOff={() => setOff(true)} />
  return (
    <>
      {/* A button, not a link to #main: the URL's fragment holds the page's route. */}
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <Nav route={route} />
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  )
}

render(<App />, document.getElementById('app')!)
