import { api, formatTime, h, problemText, renderNav, showAlert } from './console.js';
import { breaker, endpointState } from './webhooks-view.js';
import { stackOnPhones } from './tables.js';

const tbody = document.getElementById('endpoints');
stackOnPhones(tbody);
const more = document.getElementById('more');
const status = document.getElementById('webhook-status');
let nextCursor = null;

function row(endpoint) {
  const enable = endpoint.state === 'disabled' ? h('button', { type: 'button', 'aria-label': `Enable ${endpoint.url}` }, 'Enable') : null;
  enable?.addEventListener('click', () => void enableEndpoint(endpoint, enable));
  return h(
    'tr',
    { 'data-endpoint-id': endpoint.id },
    h(
      'td',
      {},
      h('a', { href: `/console/webhooks/${endpoint.id}`, class: 'mono', 'aria-label': `Deliveries to ${endpoint.url}` }, endpoint.url),
    ),
    h('td', {}, endpoint.events.join(', ')),
    h('td', { class: 'state-cell' }, endpointState(endpoint)),
    h('td', { class: 'breaker-cell' }, breaker(endpoint)),
    h('td', {}, formatTime(endpoint.created_at)),
    h('td', {}, enable),
  );
}

/** POST /webhooks/:id/enable: deliveries to a disabled endpoint resume. */
async function enableEndpoint(endpoint, button) {
  button.disabled = true;
  showAlert(null);
  const answer = await api('POST', `/webhooks/${encodeURIComponent(endpoint.id)}/enable`);
  if (answer.status !== 200) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  tbody.querySelector(`tr[data-endpoint-id="${CSS.escape(endpoint.id)}"]`)?.replaceWith(row(answer.body));
  status.textContent = `Enabled ${endpoint.url}: deliveries to it resume.`;
  status.hidden = false;
}

async function load(cursor) {
  const search = new URLSearchParams({ limit: '100' });
  if (cursor) search.set('cursor', cursor);
  const answer = await api('GET', `/webhooks?${search}`);
  if (answer.status !== 200) return showAlert(problemText(answer));
  if (!cursor) tbody.replaceChildren();
  tbody.append(...answer.body.items.map(row));
  if (tbody.rows.length === 0)
    tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No webhook endpoints yet (POST /api/v1/webhooks registers one).')));
  nextCursor = answer.body.next_cursor;
  more.hidden = !nextCursor;
  tbody.dataset.loaded = 'true';
}

more.addEventListener('click', () => void load(nextCursor));

await renderNav('webhooks');
await load();
