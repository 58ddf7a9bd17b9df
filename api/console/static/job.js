import { api, finalStates, followJobEvents, formatTime, h, problemText, renderNav, showAlert, stateBadge } from './console.js';

const jobId = decodeURIComponent(location.pathname.split('/').at(-1));
document.getElementById('job-id').textContent = jobId;
document.title = `Job ${jobId} · Chrysalis console`;
const container = document.getElementById('job');

/** Failed and cancelled jobs can be run again (POST /jobs/:id/retry: a new job whose retry_of is this one). */
const retryableStates = ['failed', 'cancelled'];

async function retry(button) {
  button.disabled = true;
  const answer = await api('POST', `/jobs/${encodeURIComponent(jobId)}/retry`);
  if (answer.status !== 202 && answer.status !== 200) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  location.assign(`/console/jobs/${answer.body.id}`);
}

function render(job) {
  const retryButton = retryableStates.includes(job.state) ? h('button', { type: 'button', id: 'retry' }, 'Retry this job') : null;
  retryButton?.addEventListener('click', () => void retry(retryButton));
  const details = [
    ['Type', job.type],
    ['State', h('span', { id: 'state', 'aria-live': 'polite' }, stateBadge(job.state))],
    ['Progress', `${job.progress ?? 0} %`],
    ['Attempts', String(job.attempts_made ?? 0)],
    ['Queued', formatTime(job.created_at)],
    ['Started', formatTime(job.started_at)],
    ['Finished', formatTime(job.finished_at)],
  ];
  if (job.retry_of) details.push(['Retry of', h('a', { href: `/console/jobs/${job.retry_of}`, class: 'mono' }, job.retry_of)]);
  if (job.schedule) details.push(['Schedule', job.schedule]);
  if (job.type === 'batch') details.push(['Batch', h('a', { href: `/console/batches/${job.id}` }, 'progress and items')]);
  // DOM's replaceChildren would write a null as the text "null": only the sections this job has.
  const sections = [
    h('dl', {}, ...details.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    job.error ? h('section', {}, h('h2', {}, 'Error'), h('pre', { id: 'error' }, job.error)) : null,
    job.result !== undefined
      ? h('section', {}, h('h2', {}, 'Result'), h('pre', { id: 'result' }, JSON.stringify(job.result, null, 2)))
      : null,
    retryButton ? h('p', {}, retryButton) : null,
  ];
  container.replaceChildren(...sections.filter(Boolean));
}

await renderNav('jobs');
const answer = await api('GET', `/jobs/${encodeURIComponent(jobId)}`);
if (answer.status !== 200) {
  showAlert(answer.status === 404 ? 'No such job.' : problemText(answer));
} else {
  let job = answer.body;
  render(job);
  if (!finalStates.includes(job.state)) {
    // Live: intermediate events carry the state; the final one carries the whole job, as GET /jobs/:id.
    followJobEvents(jobId, (name, data) => {
      job = finalStates.includes(data.state) ? data : { ...job, ...data };
      render(job);
    });
  }
}
