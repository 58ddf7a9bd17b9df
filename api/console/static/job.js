import {
  api,
  currentUser,
  finalStates,
  followJobEvents,
  formatTime,
  h,
  jobsApiBase,
  problemText,
  renderNav,
  showAlert,
  stateBadge,
} from './console.js';
import { deliveryRow } from './webhooks-view.js';
import { stackOnPhones } from './tables.js';

const jobId = decodeURIComponent(location.pathname.split('/').at(-1));
document.getElementById('job-id').textContent = jobId;
document.title = `Job ${jobId} · Chrysalis console`;
const container = document.getElementById('job');
const deliveries = document.getElementById('deliveries');
stackOnPhones(deliveries);
const deliveryStatus = document.getElementById('delivery-status');
/** While a delivery is pending, the job's deliveries are read again this often (ms). */
const deliveriesEveryMs = 2000;

/** '' for a customer's own job; '/admin' for an admin, who reads any customer's job. */
const base = await jobsApiBase();
/** The job's customer, shown to an admin reading another customer's job (null otherwise). */
let foreignCustomer = null;

/** Failed and cancelled jobs can be run again (POST /jobs/:id/retry: a new job whose retry_of is this one). */
const retryableStates = ['failed', 'cancelled'];

async function retry(button) {
  button.disabled = true;
  const answer = await api('POST', `${base}/jobs/${encodeURIComponent(jobId)}/retry`);
  if (answer.status !== 202 && answer.status !== 200) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  location.assign(`/console/jobs/${answer.body.id}`);
}

/** "850 ms", "12.3 s", "4 min 5 s": the time between two of the job's moments. */
function duration(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  const ms = Math.max(0, new Date(toIso).getTime() - new Date(fromIso).getTime());
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const note = (text) => (text ? h('span', { class: 'muted' }, ` (${text})`) : null);
const waited = (job) => note(duration(job.created_at, job.started_at) && `waited ${duration(job.created_at, job.started_at)}`);
const ran = (job) => note(duration(job.started_at, job.finished_at) && `ran ${duration(job.started_at, job.finished_at)}`);

/** The payload the job was submitted with (GET /jobs/:id?include=payload); its events do not carry it. */
let payload;

function render(job) {
  const retryButton = retryableStates.includes(job.state) ? h('button', { type: 'button', id: 'retry' }, 'Retry this job') : null;
  retryButton?.addEventListener('click', () => void retry(retryButton));
  const details = [
    ...(foreignCustomer ? [['Customer', h('span', { class: 'mono', id: 'customer' }, foreignCustomer)]] : []),
    ['Type', job.type],
    ['State', h('span', { id: 'state', 'aria-live': 'polite' }, stateBadge(job.state))],
    ['Progress', `${job.progress ?? 0} %`],
    ['Attempts', String(job.attempts_made ?? 0)],
    ['Queued', formatTime(job.created_at)],
    ['Started', [formatTime(job.started_at), waited(job)]],
    ['Finished', [formatTime(job.finished_at), ran(job)]],
  ];
  if (job.retry_of) details.push(['Retry of', h('a', { href: `/console/jobs/${job.retry_of}`, class: 'mono' }, job.retry_of)]);
  if (job.schedule) details.push(['Schedule', job.schedule]);
  if (job.type === 'batch') details.push(['Batch', h('a', { href: `/console/batches/${job.id}` }, 'progress and items')]);
  // DOM's replaceChildren would write a null as the text "null": only the sections this job has.
  const sections = [
    h('dl', {}, ...details.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    payload !== undefined ? h('section', {}, h('h2', {}, 'Payload'), h('pre', { id: 'payload' }, JSON.stringify(payload, null, 2))) : null,
    job.error ? h('section', {}, h('h2', {}, 'Error'), h('pre', { id: 'error' }, job.error)) : null,
    job.result !== undefined
      ? h('section', {}, h('h2', {}, 'Result'), h('pre', { id: 'result' }, JSON.stringify(job.result, null, 2)))
      : null,
    retryButton ? h('p', {}, retryButton) : null,
  ];
  container.replaceChildren(...sections.filter(Boolean));
}

/** GET /jobs/:id/webhook-deliveries: every delivery of this job's events, with its attempts. */
async function loadDeliveries() {
  const answer = await api('GET', `${base}/jobs/${encodeURIComponent(jobId)}/webhook-deliveries?limit=100`);
  if (answer.status !== 200) return false;
  deliveries.replaceChildren(
    ...(answer.body.items.length
      ? answer.body.items.map((delivery) =>
          // Another customer's endpoints are not the admin's to open or redeliver to.
          deliveryRow(delivery, foreignCustomer ? { link: 'none', onRedelivered: null } : { link: 'endpoint', onRedelivered }),
        )
      : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No webhook deliveries for this job.'))]),
  );
  deliveries.dataset.loaded = 'true';
  return answer.body.items.some((delivery) => delivery.state === 'pending');
}

function onRedelivered(answer, delivery) {
  if (answer.status !== 202) return showAlert(problemText(answer));
  deliveryStatus.textContent = `Redelivering ${delivery.event_type}.`;
  deliveryStatus.hidden = false;
  void followDeliveries();
}

let followingDeliveries = false;
let graceReads = 0;
/**
 * Reads the deliveries, again every 2 s while one is pending, and at least `grace` more times (a job that just
 * finished: its deliveries are stored just after its final state). A call while reading joins the reads.
 */
async function followDeliveries(grace = 0) {
  graceReads = Math.max(graceReads, grace);
  if (followingDeliveries) return;
  followingDeliveries = true;
  while ((await loadDeliveries()) || graceReads-- > 0) await new Promise((resolve) => setTimeout(resolve, deliveriesEveryMs));
  followingDeliveries = false;
  graceReads = 0;
}

await renderNav('jobs');
const answer = await api('GET', `${base}/jobs/${encodeURIComponent(jobId)}?include=payload`);
if (answer.status !== 200) {
  showAlert(answer.status === 404 ? 'No such job.' : problemText(answer));
  document.getElementById('deliveries-section').hidden = true;
} else {
  let job, customerId;
  ({ payload, customer_id: customerId, ...job } = answer.body);
  if (customerId && customerId !== (await currentUser())?.customer_id) foreignCustomer = customerId;
  render(job);
  // Deliveries are read now, and again when the job finishes (its events are emitted then), not polled meanwhile.
  void followDeliveries();
  if (!finalStates.includes(job.state)) {
    // Live: intermediate events carry the state; the final one carries the whole job, as GET /jobs/:id.
    followJobEvents(
      jobId,
      (name, data) => {
        job = finalStates.includes(data.state) ? data : { ...job, ...data };
        render(job);
        if (finalStates.includes(data.state)) void followDeliveries(2);
      },
      base,
    );
  }
}
