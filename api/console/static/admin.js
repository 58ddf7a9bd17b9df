import { api, currentUser, formatTime, h, problemText, renderNav, showAlert, stateBadge } from './console.js';

const form = document.getElementById('search');
const tbody = document.getElementById('jobs');
const dryRun = document.getElementById('dry-run');
const retry = document.getElementById('retry');
const result = document.getElementById('retry-result');

// Other admin pages link here with ?customer_id= (and may with ?state= and ?type=).
const params = new URLSearchParams(location.search);
form.customer_id.value = params.get('customer_id') ?? '';
form.state.value = params.get('state') ?? 'failed';
form.type.value = params.get('type') ?? '';

/** The filters of the form that a bulk retry takes too (it only ever touches failed jobs). */
function filters() {
  const values = {};
  if (form.customer_id.value.trim()) values.customer_id = form.customer_id.value.trim();
  if (form.error_contains.value.trim()) values.error_contains = form.error_contains.value.trim();
  if (form.type.value) values.type = form.type.value;
  return values;
}

/** Bulk retry is offered while the list shows failed jobs, the ones it retries. */
const showsFailed = () => form.state.value === 'failed';
dryRun.disabled = !showsFailed();

function report(text) {
  result.textContent = text;
  result.hidden = !text;
}

async function search() {
  showAlert(null);
  const query = new URLSearchParams({ ...filters(), limit: '100' });
  if (form.state.value) query.set('state', form.state.value);
  const answer = await api('GET', `/admin/jobs?${query}`);
  if (answer.status !== 200) return showAlert(problemText(answer));
  tbody.replaceChildren(
    ...(answer.body.items.length
      ? answer.body.items.map((job) =>
          h(
            'tr',
            { 'data-job-id': job.id },
            h('td', {}, h('a', { href: `/console/${job.type === 'batch' ? 'batches' : 'jobs'}/${job.id}`, class: 'mono' }, job.id)),
            h('td', { class: 'mono' }, job.customer_id),
            h('td', {}, job.type),
            h('td', {}, stateBadge(job.state)),
            h('td', {}, formatTime(job.created_at)),
            h('td', { class: 'error-text' }, job.error ?? ''),
          ),
        )
      : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No jobs match.'))]),
  );
}

/** POST /admin/jobs/retry with the form's filters: a dry run counts, a real run retries (and is audited). */
async function bulkRetry(dry) {
  showAlert(null);
  const answer = await api('POST', '/admin/jobs/retry', { ...filters(), dry_run: dry });
  if (answer.status !== 200 && answer.status !== 202) {
    retry.disabled = true;
    return showAlert(problemText(answer));
  }
  const { matched, retried } = answer.body;
  if (dry) {
    report(`Dry run: ${matched} failed job(s) match; nothing was retried.`);
    retry.disabled = matched === 0;
  } else {
    report(`Retried ${retried} of ${matched} failed job(s).`);
    retry.disabled = true;
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  retry.disabled = true;
  report('');
  void search();
});
// A changed filter needs a new dry run before "Retry these".
form.addEventListener('input', () => {
  retry.disabled = true;
  dryRun.disabled = !showsFailed();
});
dryRun.addEventListener('click', () => void bulkRetry(true));
retry.addEventListener('click', () => void bulkRetry(false));

await renderNav('admin');
if ((await currentUser())?.role !== 'admin') {
  showAlert('This page is for administrators.');
  form.hidden = true;
} else await search();
