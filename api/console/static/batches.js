import { api, formatTime, h, jobsApiBase, problemText, renderNav, showAlert, stateBadge } from './console.js';

await renderNav('batches');
// An admin sees every customer's batches, with whose they are.
const base = await jobsApiBase();
document.getElementById('customer-column').hidden = base !== '/admin';
const answer = await api('GET', `${base}/jobs?type=batch&limit=50`);
if (answer.status !== 200) showAlert(problemText(answer));
else
  document
    .getElementById('batches')
    .replaceChildren(
      ...(answer.body.items.length
        ? answer.body.items.map((job) =>
            h(
              'tr',
              {},
              h('td', {}, h('a', { href: `/console/batches/${job.id}`, class: 'mono' }, job.id)),
              base ? h('td', { class: 'mono' }, job.customer_id) : null,
              h('td', {}, stateBadge(job.state)),
              h('td', {}, formatTime(job.created_at)),
            ),
          )
        : [h('tr', {}, h('td', { colspan: base ? 4 : 3, class: 'muted' }, 'No batches yet.'))]),
    );
