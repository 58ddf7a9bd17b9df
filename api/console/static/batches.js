import { api, formatTime, h, problemText, renderNav, showAlert, stateBadge } from './console.js';

await renderNav('batches');
const answer = await api('GET', '/jobs?type=batch&limit=50');
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
              h('td', {}, stateBadge(job.state)),
              h('td', {}, formatTime(job.created_at)),
            ),
          )
        : [h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No batches yet.'))]),
    );
