// Shared by every console page: API calls, the navigation and job events. The signed-in user's session
// is an httpOnly cookie (POST /api/v1/auth/session) that this script can neither read nor leak; the
// browser sends it to /api/v1 by itself. Every call also sends the CSRF header the API asks of
// state-changing requests a cookie authenticates.

const csrfHeaders = { 'x-chrysalis-csrf': '1' };

/**
 * Kept for pages written against the token version: there are no tokens any more (the session cookie is
 * httpOnly), so this is always null. Ask `currentUser()` who is signed in.
 * @deprecated
 */
export function storedTokens() {
  return null;
}

/**
 * Kept for pages written against the token version; does nothing (sign in with `signIn`, out with `signOut`).
 * @deprecated
 */
export function storeTokens() {}

/** To the sign-in page, coming back here afterwards. */
export function goToSignIn() {
  const back = location.pathname + location.search;
  location.assign(`/console?next=${encodeURIComponent(back)}`);
}

/** Signs in (POST /auth/session): `{status, body}`; on 201 the browser holds the session cookie. */
export async function signIn(email, password) {
  const response = await fetch('/api/v1/auth/session', {
    method: 'POST',
    headers: { ...csrfHeaders, 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Ends the session server-side (DELETE /auth/session), then shows the sign-in page. */
export async function signOut() {
  await fetch('/api/v1/auth/session', { method: 'DELETE', headers: csrfHeaders }).catch(() => undefined);
  location.assign('/console');
}

/** A fetch with the session cookie and the CSRF header; with no live session (401), back to sign-in. */
async function authorizedFetch(path, init = {}) {
  const response = await fetch(path, { ...init, credentials: 'same-origin', headers: { ...init.headers, ...csrfHeaders } });
  if (response.status !== 401) return response;
  goToSignIn();
  return new Promise(() => undefined); // the page is leaving
}

/** Calls the JSON API under /api/v1: `{status, body}`, body parsed (problem+json included). */
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await authorizedFetch(`/api/v1${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** The text of a problem answer, for an alert. */
export const problemText = (answer) => answer.body?.detail ?? answer.body?.title ?? `HTTP ${answer.status}`;

/** Creates an element: `h('a', {href: '/x'}, 'text', child)`. Text is always set as text, never parsed as HTML. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString('en-GB', { timeZone: 'UTC' }) + ' UTC' : '—');

/** A state as a badge (`.state-failed` etc. colour it). */
export const stateBadge = (state) => h('span', { class: `state state-${state}`, 'data-state': state }, state);

export const finalStates = ['completed', 'failed', 'cancelled'];

/** Shows `message` in the page's alert region (role=alert), or clears it. */
export function showAlert(message) {
  const alert = document.getElementById('alert');
  alert.textContent = message ?? '';
  alert.hidden = !message;
}

/** The signed-in user (GET /auth/me), once per page. */
let me;
export const currentUser = () => (me ??= api('GET', '/auth/me').then((answer) => answer.body));

/**
 * Where the signed-in user reads jobs and batches: an admin sees every customer's (SPEC §9), through the
 * /admin routes, which answer as the customer's own routes do and add `customer_id`.
 */
export const jobsApiBase = async () => ((await currentUser())?.role === 'admin' ? '/admin' : '');

/** Fills the page's <nav>: the customer pages, Admin for admins, who is signed in, sign out. */
export async function renderNav(active) {
  const nav = document.querySelector('nav');
  const links = [
    ['jobs', 'Jobs', '/console/jobs'],
    ['batches', 'Batches', '/console/batches'],
    ['schedules', 'Schedules', '/console/schedules'],
    ['webhooks', 'Webhooks', '/console/webhooks'],
    ['api-keys', 'API keys', '/console/api-keys'],
    ['usage', 'Usage', '/console/usage'],
  ];
  const user = await currentUser();
  if (user?.role === 'admin')
    links.push(
      ['admin', 'Admin', '/console/admin'],
      ['admin-failures', 'Failures', '/console/admin/failures'],
      ['admin-customers', 'Customers', '/console/admin/customers'],
    );
  const signOutButton = h('button', { type: 'button', class: 'link' }, 'Sign out');
  signOutButton.addEventListener('click', () => void signOut());
  nav.replaceChildren(
    h('a', { href: '/console/jobs', class: 'brand' }, 'Chrysalis'),
    h(
      'ul',
      {},
      ...links.map(([key, label, href]) => h('li', {}, h('a', { href, 'aria-current': key === active ? 'page' : undefined }, label))),
    ),
    h('span', { class: 'who' }, user?.email ?? ''),
    signOutButton,
  );
}

/**
 * Follows GET /jobs/:id/events (Server-Sent Events) with an EventSource, which the session cookie
 * authenticates. The browser reconnects by itself (with Last-Event-ID) when the stream drops; the
 * stream is closed at the job's final event, so it does not reconnect after. When the server refuses
 * the stream (an EventSource gives up on any answer but 200), the job is read once: 404 ends it, 401
 * goes to sign-in, anything else (a 429 past the open-stream limit, a restart) tries again later.
 * `onEvent(name, data)` gets each `state` and `progress` event; `stop()` ends it. `base` '/admin': any customer's job.
 */
export function followJobEvents(jobId, onEvent, base = '') {
  const url = `/api/v1${base}/jobs/${encodeURIComponent(jobId)}/events`;
  let source = null;
  let stopped = false;
  let retryTimer;
  let delayMs = 1000;

  const stop = () => {
    stopped = true;
    clearTimeout(retryTimer);
    source?.close();
  };

  function open() {
    if (stopped) return;
    source = new EventSource(url);
    for (const name of ['state', 'progress']) {
      source.addEventListener(name, (event) => {
        delayMs = 1000;
        const data = JSON.parse(event.data);
        if (name === 'state' && finalStates.includes(data.state)) stop();
        onEvent(name, data);
      });
    }
    source.addEventListener('error', () => {
      if (stopped || source.readyState !== EventSource.CLOSED) return; // CONNECTING: the browser retries itself
      void api('GET', `${base}/jobs/${encodeURIComponent(jobId)}`).then((answer) => {
        if (stopped || answer.status === 404) return;
        if (answer.status === 200 && finalStates.includes(answer.body.state)) {
          stop();
          return onEvent('state', answer.body);
        }
        retryTimer = setTimeout(open, delayMs);
        delayMs = Math.min(delayMs * 2, 15_000);
      });
    });
  }

  open();
  return { stop };
}
