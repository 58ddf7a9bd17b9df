// Shared by every console page: the signed-in user's tokens, API calls, the navigation and job events.

const tokenKey = 'chrysalis.console.tokens';

/** The tokens of POST /auth/login, for this tab only (sessionStorage: gone when the tab closes). */
export function storedTokens() {
  try {
    return JSON.parse(sessionStorage.getItem(tokenKey) ?? 'null');
  } catch {
    return null;
  }
}

export function storeTokens(tokens) {
  if (tokens) sessionStorage.setItem(tokenKey, JSON.stringify({ access: tokens.access_token, refresh: tokens.refresh_token }));
  else sessionStorage.removeItem(tokenKey);
}

/** To the sign-in page, coming back here afterwards. */
export function goToSignIn() {
  const back = location.pathname + location.search;
  location.assign(`/console?next=${encodeURIComponent(back)}`);
}

/** A new access token from the refresh token (they expire after minutes); false when that is no longer possible. */
async function refreshTokens() {
  const tokens = storedTokens();
  if (!tokens?.refresh) return false;
  const response = await fetch('/api/v1/auth/refresh', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  });
  if (!response.ok) return false;
  storeTokens(await response.json());
  return true;
}

/** A fetch with the bearer token, refreshed once on a 401; with no usable session, back to sign-in. */
async function authorizedFetch(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const tokens = storedTokens();
    if (!tokens) {
      goToSignIn();
      return new Promise(() => undefined); // the page is leaving
    }
    const response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${tokens.access}` } });
    if (response.status !== 401) return response;
    if (attempt > 0 || !(await refreshTokens())) {
      storeTokens(null);
      goToSignIn();
      return new Promise(() => undefined);
    }
  }
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

/** Fills the page's <nav>: the customer pages, Admin for admins, who is signed in, sign out. */
export async function renderNav(active) {
  if (!storedTokens()) return goToSignIn();
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
  const signOut = h('button', { type: 'button', class: 'link' }, 'Sign out');
  signOut.addEventListener('click', async () => {
    const tokens = storedTokens();
    storeTokens(null);
    if (tokens?.refresh)
      await fetch('/api/v1/auth/logout', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: tokens.refresh }),
      }).catch(() => undefined);
    location.assign('/console');
  });
  nav.replaceChildren(
    h('a', { href: '/console/jobs', class: 'brand' }, 'Chrysalis'),
    h(
      'ul',
      {},
      ...links.map(([key, label, href]) => h('li', {}, h('a', { href, 'aria-current': key === active ? 'page' : undefined }, label))),
    ),
    h('span', { class: 'who' }, user?.email ?? ''),
    signOut,
  );
}

/**
 * Follows GET /jobs/:id/events (Server-Sent Events) with the bearer token: an EventSource cannot send
 * an Authorization header, so the stream is read through fetch. Reconnects (with Last-Event-ID) when
 * the stream drops before the job's final event, as an EventSource would; stops at the final event,
 * at a 204 or 404, or when `stop()` is called. `onEvent(name, data)` gets each event.
 */
export function followJobEvents(jobId, onEvent) {
  const controller = new AbortController();
  let lastEventId;
  let finished = false;

  async function readOnce() {
    const headers = { accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const response = await authorizedFetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal: controller.signal });
    if (response.status === 204 || response.status === 404) return true;
    if (!response.ok || !response.body) return false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return finished;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
          else if (line.startsWith('id: ')) lastEventId = line.slice(4);
        }
        if (!data) continue; // a heartbeat comment
        const parsed = JSON.parse(data);
        if (name === 'state' && finalStates.includes(parsed.state)) finished = true;
        onEvent(name, parsed);
      }
    }
  }

  (async () => {
    while (!controller.signal.aborted) {
      const done = await readOnce().catch(() => controller.signal.aborted);
      if (done || finished) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return { stop: () => controller.abort() };
}
