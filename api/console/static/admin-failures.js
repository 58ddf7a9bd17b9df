import { api, currentUser, formatTime, h, problemText, renderNav, showAlert } from './console.js';

const form = document.getElementById('filters');
const container = document.getElementById('groups');
const scope = document.getElementById('scope');
/** The most jobs one POST /admin/jobs/retry retries (SPEC §9). */
const maxBulkJobs = 10_000;

// The filters live in the URL, so a view can be shared with another operator.
const params = new URLSearchParams(location.search);
form.customer_id.value = params.get('customer_id') ?? '';
if (params.has('since')) form.since.value = params.get('since');

/** The filters as the API takes them (a group is retried with the same ones). */
function filters() {
  const values = {};
  const customer = form.customer_id.value.trim();
  if (customer) values.customer_id = customer;
  if (form.since.value) values.created_after = new Date(Date.now() - Number(form.since.value) * 86_400_000).toISOString();
  return values;
}

/**
 * "Retry these": a dry run first (POST /admin/jobs/retry with the group's error as `error_contains`), whose
 * count the operator confirms; then the retry. `error_contains` is a substring, so the dry run's count is
 * what will really be retried, which may include a longer error that starts the same way.
 */
function retryControls(group, filterValues) {
  const status = h('p', { role: 'status', class: 'retry-status' });
  const label = group.error ?? 'failures without error text';
  const retry = h('button', { type: 'button', 'aria-label': `Retry these: ${label}` }, 'Retry these');
  const confirm = h('button', { type: 'button', hidden: true, 'aria-label': `Confirm retry: ${label}` }, 'Confirm retry');
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Cancel');
  const usable = group.error !== null && group.error.trim().length >= 3 && group.not_retried > 0;
  retry.disabled = !usable;
  if (!usable)
    status.textContent =
      group.not_retried === 0
        ? 'Every job here has been retried already.'
        : 'This error is too short to search by; retry these jobs one by one.';
  const body = { ...filterValues, error_contains: group.error?.trim() };

  retry.addEventListener('click', async () => {
    retry.disabled = true;
    showAlert(null);
    const answer = await api('POST', '/admin/jobs/retry', { ...body, dry_run: true });
    if (answer.status !== 200) {
      retry.disabled = false;
      return showAlert(problemText(answer));
    }
    const { matched } = answer.body;
    const retrying = Math.min(matched, maxBulkJobs);
    status.textContent = matched
      ? `Dry run: ${matched.toLocaleString('en-US')} failed job(s) match and would be retried${matched > maxBulkJobs ? ` (the newest ${maxBulkJobs.toLocaleString('en-US')} at a time)` : ''}. Confirm to retry them.`
      : 'Dry run: no failed job without a retry matches any more.';
    confirm.textContent = `Retry ${retrying.toLocaleString('en-US')} job(s)`;
    confirm.dataset.matched = String(retrying);
    confirm.hidden = matched === 0;
    cancel.hidden = matched === 0;
    retry.hidden = matched > 0;
    retry.disabled = false;
  });
  cancel.addEventListener('click', () => {
    confirm.hidden = cancel.hidden = true;
    retry.hidden = false;
    status.textContent = '';
  });
  confirm.addEventListener('click', async () => {
    confirm.disabled = cancel.disabled = true;
    const answer = await api('POST', '/admin/jobs/retry', { ...body, dry_run: false, limit: Math.max(1, Number(confirm.dataset.matched)) });
    confirm.disabled = cancel.disabled = false;
    if (answer.status !== 200) return showAlert(problemText(answer));
    confirm.hidden = cancel.hidden = true;
    retry.hidden = false;
    retry.disabled = true;
    status.textContent = `Retried ${answer.body.retried} of ${answer.body.matched} failed job(s).`;
  });
  return h('div', {}, h('p', { class: 'row' }, retry, confirm, cancel), status);
}

function card(group, filterValues) {
  const customers = group.customer_ids.map((id) =>
    h('a', { href: `/console/admin?customer_id=${encodeURIComponent(id)}`, class: 'mono', 'data-customer-id': id }, id),
  );
  return h(
    'section',
    { class: 'group', 'data-error': group.error ?? '' },
    h('h2', {}, group.error ?? h('span', { class: 'muted' }, '(no error text)')),
    h(
      'p',
      {},
      h('strong', { class: 'group-count' }, `${group.jobs.toLocaleString('en-US')} failed job(s)`),
      `, ${group.not_retried.toLocaleString('en-US')} not retried yet · ${group.types.join(', ')} · last ${formatTime(group.last_failed_at)}, first ${formatTime(group.first_failed_at)}`,
    ),
    h(
      'p',
      { class: 'customers' },
      `${group.customers} customer(s): `,
      ...customers.flatMap((link, i) => (i ? [', ', link] : [link])),
      group.customers > customers.length ? ` and ${group.customers - customers.length} more` : '',
    ),
    retryControls(group, filterValues),
  );
}

async function load() {
  showAlert(null);
  const filterValues = filters();
  const search = new URLSearchParams({ ...filterValues, limit: '50' });
  const shown = new URLSearchParams();
  if (filterValues.customer_id) shown.set('customer_id', filterValues.customer_id);
  if (form.since.value !== '7') shown.set('since', form.since.value);
  history.replaceState(null, '', `/console/admin/failures${shown.size ? `?${shown}` : ''}`);
  const answer = await api('GET', `/admin/jobs/failure-groups?${search}`);
  if (answer.status !== 200) return showAlert(problemText(answer));
  const { items, scanned, complete } = answer.body;
  scope.textContent = complete
    ? `${scanned.toLocaleString('en-US')} failed job(s) in ${items.length} group(s).`
    : `The newest ${scanned.toLocaleString('en-US')} failed jobs, in ${items.length} group(s); older failures are not counted (narrow by customer or time).`;
  container.replaceChildren(
    ...(items.length ? items.map((group) => card(group, filterValues)) : [h('p', { class: 'muted' }, 'No failed jobs match.')]),
  );
  container.dataset.loaded = 'true';
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void load();
});

await renderNav('admin-failures');
if ((await currentUser())?.role !== 'admin') {
  showAlert('This page is for administrators.');
  form.hidden = true;
} else await load();
