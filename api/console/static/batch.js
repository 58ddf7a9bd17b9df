import { api, finalStates, followJobEvents, formatTime, h, jobsApiBase, problemText, renderNav, showAlert, stateBadge } from './console.js';

const batchId = decodeURIComponent(location.pathname.split('/').at(-1));
document.getElementById('batch-id').textContent = batchId;
document.title = `Batch ${batchId} · Chrysalis console`;
const container = document.getElementById('batch');
/** '' for the customer's own batch; '/admin' for an admin, who reads any customer's. */
const base = await jobsApiBase();
/**
 * Counts are re-read at most this often while the batch runs, in ms (events trigger reads; this is the floor).
 * An admin's reads each go to the audit log: less often.
 */
const pollMs = base ? 5000 : 1000;

const bar = h('progress', { id: 'progress', max: 1, value: 0, 'aria-label': 'Items finished' });
const percent = h('strong', { id: 'percent' }, '0 %');
const summary = h('p', { id: 'summary', 'aria-live': 'polite' });
const details = h('dl');
const failedItems = h('tbody', { id: 'failed-items' });
container.replaceChildren(
  details,
  h('p', {}, h('label', { for: 'progress' }, 'Progress '), percent),
  bar,
  summary,
  h('h2', {}, 'Failed items'),
  h(
    'table',
    {},
    h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Substrate'), h('th', { scope: 'col' }, 'Error')),
    ),
    failedItems,
  ),
);

async function showFailedItems() {
  const answer = await api('GET', `${base}/batches/${encodeURIComponent(batchId)}/items?state=failed&limit=100`);
  if (answer.status !== 200) return;
  failedItems.replaceChildren(
    ...(answer.body.items.length
      ? answer.body.items.map((item) =>
          h(
            'tr',
            {},
            h('td', {}, String(item.index)),
            h('td', { class: 'mono' }, item.substrate_id),
            h('td', { class: 'error-text' }, item.error),
          ),
        )
      : [h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'None.'))]),
  );
}

/** Reads the counts and draws them; true once the batch is final. */
async function refresh() {
  const answer = await api('GET', `${base}/batches/${encodeURIComponent(batchId)}`);
  if (answer.status !== 200) {
    showAlert(answer.status === 404 ? 'No such batch.' : problemText(answer));
    return true;
  }
  const batch = answer.body;
  const finished = batch.completed + batch.failed;
  bar.max = batch.total;
  bar.value = finished;
  percent.textContent = `${Math.floor((finished / batch.total) * 100)} %`;
  summary.textContent = `${finished.toLocaleString('en-US')} of ${batch.total.toLocaleString('en-US')} items finished: ${batch.completed.toLocaleString('en-US')} completed, ${batch.failed.toLocaleString('en-US')} failed.`;
  details.replaceChildren(
    ...[
      ...(batch.customer_id ? [['Customer', h('span', { class: 'mono' }, batch.customer_id)]] : []),
      ['State', stateBadge(batch.state)],
      ['Items', batch.total.toLocaleString('en-US')],
      ['Created', formatTime(batch.created_at)],
      ['Finished', formatTime(batch.finished_at)],
      ['Job', h('a', { href: `/console/jobs/${batchId}` }, 'job details')],
    ].flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );
  const final = finalStates.includes(batch.state);
  if (final || batch.failed > 0) await showFailedItems();
  return final;
}

await renderNav('batches');
if (!(await refresh())) {
  // Progress events make the bar move as soon as the worker reports; the timer covers quiet stretches.
  let pending = false;
  let done = false;
  const tick = async () => {
    if (pending || done) return;
    pending = true;
    done = await refresh().finally(() => (pending = false));
    if (done) {
      clearInterval(timer);
      stream.stop();
    }
  };
  const stream = followJobEvents(batchId, () => void tick(), base);
  const timer = setInterval(() => void tick(), pollMs);
}
