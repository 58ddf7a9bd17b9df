import { api, h, problemText, renderNav, showAlert } from './console.js';
import { breaker, deliveryRow, endpointState } from './webhooks-view.js';
import { stackOnPhones } from './tables.js';

/** While a delivery on the page is pending, the page is read again this often (ms) to show its attempts. */
const pendingEveryMs = 2000;

const endpointId = decodeURIComponent(location.pathname.split('/').at(-1));
const tbody = document.getElementById('deliveries');
stackOnPhones(tbody);
const more = document.getElementById('more');
const status = document.getElementById('delivery-status');
let nextCursor = null;

const row = (delivery) => deliveryRow(delivery, { link: 'job', onRedelivered });

const replaceRow = (delivery) => tbody.querySelector(`tr[data-delivery-id="${CSS.escape(delivery.id)}"]`)?.replaceWith(row(delivery));

function onRedelivered(answer, delivery) {
  if (answer.status !== 202) return showAlert(problemText(answer));
  showAlert(null);
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
