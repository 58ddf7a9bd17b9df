import { api, currentUser, formatTime, h, problemText, renderNav, showAlert } from './console.js';
import { badge } from './webhooks-view.js';
import { stackOnPhones } from './tables.js';

const tbody = document.getElementById('customers');
stackOnPhones(tbody);
const more = document.getElementById('more');
const status = document.getElementById('customer-status');
let nextCursor = null;
/** GET /admin/backlog's customers (the 100 holding the most unfinished jobs), by id. */
let backlog = new Map();

const usd = (cents) => (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' });
const count = (n) => n.toLocaleString('en-US');

/** A service: its type and tier, and whether it runs, is switched off, or is suspended (and why). */
function service(item) {
  const state = item.suspended_reason ? 'suspended' : item.enabled ? 'running' : 'disabled';
  return h(
    'li',
    { 'data-service': item.service_type, 'data-service-state': state },
    `${item.service_type} (${item.tier}) `,
    badge(state === 'suspended' ? 'disabled' : state, state),
    item.suspended_reason ? h('span', { class: 'muted' }, ` ${item.suspended_reason}`) : null,
  );
}

function money(customer) {
  const limit = customer.max_monthly_usd_cents;
  const atLimit = limit !== null && customer.current_month_charged_usd_cents >= limit;
  return h(
    'ul',
    { class: 'plain' },
    h('li', {}, `balance ${usd(customer.balance_usd_cents)}`),
    h('li', {}, `this month ${usd(customer.current_month_charged_usd_cents)}`),
    h(
      'li',
      {},
      limit === null
        ? h('span', { class: 'muted' }, 'no monthly limit')
        : [`limit ${usd(limit)} a month `, atLimit ? badge('limited', 'reached') : null],
    ),
  );
}

function backlogOf(customer) {
  const row = backlog.get(customer.id);
  if (!row) return h('span', { class: 'muted' }, 'nothing unfinished');
  const cap = (value, max) => (max === null ? count(value) : `${count(value)} / ${count(max)}`);
  return h(
    'ul',
    { class: 'plain' },
    h('li', {}, `queued ${cap(row.queued + row.delayed, row.max_queued)}`),
    h('li', {}, `running ${cap(row.active, row.max_active)}`),
  );
}

function row(customer) {
  const paused = customer.paused_at !== null;
  const button = h(
    'button',
    { type: 'button', class: paused ? undefined : 'secondary', 'aria-label': `${paused ? 'Resume' : 'Pause'} work of ${customer.name}` },
    paused ? 'Resume work' : 'Pause work',
  );
  button.addEventListener('click', () => void setPaused(customer, !paused, button));
  return h(
    'tr',
    { 'data-customer-id': customer.id },
    h(
      'td',
      {},
      h('div', {}, customer.name),
      h('a', { href: `/console/admin?customer_id=${encodeURIComponent(customer.id)}`, class: 'mono muted' }, customer.id),
      h('div', { class: 'muted' }, `since ${formatTime(customer.created_at)}`),
    ),
    h(
      'td',
      { class: 'work-cell' },
      paused ? [badge('paused'), h('div', { class: 'muted' }, `since ${formatTime(customer.paused_at)}`)] : badge('running'),
    ),
    h(
      'td',
      {},
      customer.services.length ? h('ul', { class: 'plain' }, ...customer.services.map(service)) : h('span', { class: 'muted' }, 'none'),
    ),
    h('td', {}, money(customer)),
    h('td', {}, backlogOf(customer)),
    h('td', {}, button),
  );
}

/** POST /admin/customers/:id/pause or /resume (audited): the customer's jobs are kept but not started while paused. */
async function setPaused(customer, pause, button) {
  if (pause && !confirm(`Pause the work of ${customer.name}? Its jobs are kept and accepted but not started until resumed.`)) return;
  button.disabled = true;
  showAlert(null);
  const answer = await api('POST', `/admin/customers/${encodeURIComponent(customer.id)}/${pause ? 'pause' : 'resume'}`);
  if (answer.status !== 200) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  const updated = { ...customer, paused_at: answer.body.paused_at };
  tbody.querySelector(`tr[data-customer-id="${CSS.escape(customer.id)}"]`)?.replaceWith(row(updated));
  status.textContent = pause ? `Paused the work of ${customer.name}.` : `Resumed the work of ${customer.name}.`;
  status.hidden = false;
}

async function load(cursor) {
  const search = new URLSearchParams({ limit: '50' });
  if (cursor) search.set('cursor', cursor);
  const [answer, held] = await Promise.all([
    api('GET', `/admin/customers?${search}`),
    cursor ? null : api('GET', '/admin/backlog?limit=100'),
  ]);
  if (answer.status !== 200) return showAlert(problemText(answer));
  if (held?.status === 200) backlog = new Map(held.body.items.map((item) => [item.customer_id, item]));
  if (!cursor) tbody.replaceChildren();
  tbody.append(...answer.body.items.map(row));
  if (tbody.rows.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No customers yet.')));
  nextCursor = answer.body.next_cursor;
  more.hidden = !nextCursor;
  tbody.dataset.loaded = 'true';
}

more.addEventListener('click', () => void load(nextCursor));

await renderNav('admin-customers');
if ((await currentUser())?.role !== 'admin') showAlert('This page is for administrators.');
else await load();
