import { api, formatTime, h, problemText, renderNav, showAlert } from './console.js';
import { attemptList, breaker, deliveryState, endpointState } from './webhooks-view.js';

/** While a delivery on the page is pending, the page is read again this often (ms) to show its attempts. */
const pendingEveryMs = 2000;

const endpointId = decodeURIComponent(location.pathname.split('/').at(-1));
const tbody = document.getElementById('deliveries');
const more = document.getElementById('more');
const status = document.getElementById('delivery-status');
let nextCursor = null;

function row(delivery) {
  const redeliver = h('button', { type: 'button', class: 'secondary', 'aria-label': `Redeliver ${delivery.id}` }, 'Redeliver');
  redeliver.disabled = delivery.state === 'pending';
  redeliver.addEventListener('click', () => void redeliverOne(delivery, redeliver));
  return h(
    'tr',
    { 'data-delivery-id': delivery.id, 'data-state': delivery.state },
    h('td', {}, delivery.event_type),
    h('td', {}, h('a', { href: `/console/jobs/${delivery.job_id}`, class: 'mono' }, delivery.job_id)),
    h('td', { class: 'state-cell' }, deliveryState(delivery)),
    h('td', { class: 'attempts-cell' }, attemptList(delivery)),
    h('td', {}, formatTime(delivery.created_at)),
    h('td', {}, redeliver),
  );
}

const replaceRow = (delivery) => tbody.querySelector(`tr[data-delivery-id="${CSS.escape(delivery.id)}"]`)?.replaceWith(row(delivery));

/** POST …/redeliver: the delivery goes out again (a fresh retry schedule) under the same webhook-id. */
async function redeliverOne(delivery, button) {
  button.disabled = true;
  showAlert(null);
  const answer = await api('POST', `/webhooks/${encodeURIComponent(endpointId)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
  if (answer.status !== 202) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  replaceRow(answer.body);
  status.textContent = `Redelivering ${delivery.event_type} for job ${delivery.job_id}.`;
  status.hidden = false;
  followPending();
}

let following = null;
/** Re-reads the first page while any delivery shown is pending, updating the rows it holds. */
function followPending() {
  if (following) return;
  following = setInterval(async () => {
    if (!tbody.querySelector('tr[data-state=pending]')) {
      clearInterval(following);
      following = null;
      return;
    }
    const answer = await api('GET', `/webhooks/${encodeURIComponent(endpointId)}/deliveries?limit=100`);
    if (answer.status === 200) for (const delivery of answer.body.items) replaceRow(delivery);
  }, pendingEveryMs);
}

async function load(cursor) {
  const search = new URLSearchParams({ limit: '50' });
  if (cursor) search.set('cursor', cursor);
  const answer = await api('GET', `/webhooks/${encodeURIComponent(endpointId)}/deliveries?${search}`);
  if (answer.status !== 200) return showAlert(answer.status === 404 ? 'No such webhook endpoint.' : problemText(answer));
  if (!cursor) tbody.replaceChildren();
  tbody.append(...answer.body.items.map(row));
  if (tbody.rows.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No deliveries yet.')));
  nextCursor = answer.body.next_cursor;
  more.hidden = !nextCursor;
  tbody.dataset.loaded = 'true';
  followPending();
}

/** The endpoint itself, from the list (a customer has at most 50, one page): its URL, state and breaker. */
async function showEndpoint() {
  const answer = await api('GET', '/webhooks?limit=100');
  const endpoint = answer.status === 200 ? answer.body.items.find((item) => item.id === endpointId) : undefined;
  if (!endpoint) return;
  document.getElementById('endpoint-url').textContent = endpoint.url;
  document.title = `Deliveries to ${endpoint.url} · Chrysalis console`;
  const details = [
    ['Events', endpoint.events.join(', ')],
    ['State', endpointState(endpoint)],
    ['Circuit breaker', breaker(endpoint)],
    ['All endpoints', h('a', { href: '/console/webhooks' }, 'Webhooks')],
  ];
  document
    .getElementById('endpoint')
    .replaceChildren(h('dl', {}, ...details.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])));
}

more.addEventListener('click', () => void load(nextCursor));

await renderNav('webhooks');
await Promise.all([showEndpoint(), load()]);
