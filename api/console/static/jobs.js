import { api, followJobEvents, formatTime, h, jobsApiBase, problemText, renderNav, showAlert, stateBadge, finalStates } from './console.js';

/** Event streams held open at once for the visible unfinished jobs (the starter tier allows 5 per customer). */
const maxStreams = 3;
/** '' for the customer's own jobs; '/admin' for an admin, who sees every customer's (with a Customer column). */
const base = await jobsApiBase();
const admin = base === '/admin';
/** How often the first page is re-read for new jobs, in ms (an admin's reads each go to the audit log: less often). */
const newJobsEveryMs = admin ? 5000 : 2000;
document.getElementById('customer-column').hidden = !admin;

const form = document.getElementById('filters');
const tbody = document.getElementById('jobs');
const more = document.getElementById('more');
const note = document.getElementById('live-note');
/** Open streams by job id. */
const streams = new Map();
let nextCursor = null;
/** Bumped by each reload: a page read under the filters before it is dropped, not shown under the new ones. */
let generation = 0;

// The filters live in the URL, so a filtered list can be bookmarked and reloaded.
const params = new URLSearchParams(location.search);
form.state.value = params.get('state') ?? '';
form.type.value = params.get('type') ?? '';

function query(cursor) {
  const search = new URLSearchParams({ limit: '20' });
  if (form.state.value) search.set('state', form.state.value);
  if (form.type.value) search.set('type', form.type.value);
  if (cursor) search.set('cursor', cursor);
  return `${base}/jobs?${search}`;
}

function row(job) {
  const link = job.type === 'batch' ? `/console/batches/${job.id}` : `/console/jobs/${job.id}`;
  return h(
    'tr',
    { 'data-job-id': job.id },
    h('td', {}, h('a', { href: link, class: 'mono' }, job.id)),
    admin ? h('td', { class: 'mono' }, job.customer_id) : null,
    h('td', {}, job.type),
    h('td', { class: 'state-cell' }, stateBadge(job.state)),
    h('td', {}, formatTime(job.created_at)),
    h('td', { class: 'error-text' }, job.error ?? ''),
  );
}

/** Puts a job's new state in its row (and its error, once final). */
function updateRow(job) {
  const tr = tbody.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (!tr) return;
  tr.querySelector('.state-cell').replaceChildren(stateBadge(job.state));
  if (job.error) tr.querySelector('.error-text').textContent = job.error;
}

const describeStreams = () => {
  note.textContent = streams.size ? `Following ${streams.size} unfinished job(s) live.` : '';
};

/** Streams the events of the visible unfinished jobs, up to `maxStreams`; a stream ends with its job. */
function followUnfinished(jobs) {
  for (const job of jobs) {
    if (streams.size >= maxStreams) break;
    if (finalStates.includes(job.state) || streams.has(job.id)) continue;
    const stream = followJobEvents(
      job.id,
      (name, data) => {
        if (name !== 'state') return;
        updateRow(data);
        if (finalStates.includes(data.state)) {
          streams.get(job.id)?.stop();
          streams.delete(job.id);
          describeStreams();
        }
      },
      base,
    );
    streams.set(job.id, stream);
  }
  describeStreams();
}

/** Reads the first page again: new jobs go on top, known rows get their state. */
async function refreshFirstPage() {
  const asked = generation;
  const answer = await api('GET', query());
  if (asked !== generation) return;
  if (answer.status !== 200) return showAlert(problemText(answer));
  showAlert(null);
  const known = new Set([...tbody.rows].map((tr) => tr.dataset.jobId));
  const fresh = answer.body.items.filter((job) => !known.has(job.id));
  tbody.prepend(...fresh.map(row));
  for (const job of answer.body.items) if (known.has(job.id)) updateRow(job);
  if (known.size === 0) {
    nextCursor = answer.body.next_cursor;
    more.hidden = !nextCursor;
  }
  followUnfinished(answer.body.items);
  document.getElementById('empty').hidden = tbody.rows.length > 0;
  tbody.dataset.loaded = 'true';
}

async function reload() {
  generation += 1;
  for (const stream of streams.values()) stream.stop();
  streams.clear();
  tbody.replaceChildren();
  delete tbody.dataset.loaded;
  const search = new URLSearchParams();
  if (form.state.value) search.set('state', form.state.value);
  if (form.type.value) search.set('type', form.type.value);
  history.replaceState(null, '', `/console/jobs${search.size ? `?${search}` : ''}`);
  await refreshFirstPage();
}

more.addEventListener('click', async () => {
  const asked = generation;
  const answer = await api('GET', query(nextCursor));
  if (asked !== generation) return;
  if (answer.status !== 200) return showAlert(problemText(answer));
  tbody.append(...answer.body.items.map(row));
  nextCursor = answer.body.next_cursor;
  more.hidden = !nextCursor;
});
form.addEventListener('change', () => void reload());
form.addEventListener('submit', (event) => event.preventDefault());

await renderNav('jobs');
await reload();
setInterval(() => {
  if (document.visibilityState === 'visible') void refreshFirstPage();
}, newJobsEveryMs);
