import { api, formatTime, h, problemText, renderNav, showAlert } from './console.js';
import { stackOnPhones } from './tables.js';

const tbody = document.getElementById('schedules');
stackOnPhones(tbody);
const more = document.getElementById('more');
const status = document.getElementById('schedule-status');
let nextCursor = null;

/** "every 5 min", "every 10 s", "every 1.5 h": an interval schedule's period, in words. */
function every(ms) {
  const units = [
    [86_400_000, 'day'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  const [size, unit] = units.find(([size]) => ms >= size) ?? [1, 'ms'];
  const amount = Math.round((ms / size) * 100) / 100;
  return `every ${amount.toLocaleString('en-US')} ${unit}${unit === 'day' && amount !== 1 ? 's' : ''}`;
}

const when = (schedule) =>
  schedule.cron !== null
    ? h('span', {}, h('code', {}, schedule.cron), schedule.tz && schedule.tz !== 'UTC' ? ` (${schedule.tz})` : ' (UTC)')
    : every(schedule.every_ms);

const stateOf = (schedule) => (schedule.paused ? 'paused' : 'running');

function row(schedule) {
  const paused = schedule.paused;
  const button = h(
    'button',
    { type: 'button', class: paused ? undefined : 'secondary', 'aria-label': `${paused ? 'Resume' : 'Pause'} ${schedule.name}` },
    paused ? 'Resume' : 'Pause',
  );
  button.addEventListener('click', () => void setPaused(schedule, !paused, button));
  return h(
    'tr',
    { 'data-schedule': schedule.name },
    h('td', { class: 'mono' }, schedule.name),
    h('td', {}, schedule.job.type),
    h('td', {}, when(schedule)),
    h('td', { class: 'next-run' }, paused ? h('span', { class: 'muted' }, 'none while paused') : formatTime(schedule.next_run_at)),
    h(
      'td',
      { class: 'state-cell' },
      h('span', { class: `state state-${stateOf(schedule)}`, 'data-state': stateOf(schedule) }, stateOf(schedule)),
    ),
    h('td', {}, button),
  );
}

/** POST /schedules/:name/pause or /resume; the row shows the answer (the API's view after the change). */
async function setPaused(schedule, pause, button) {
  button.disabled = true;
  showAlert(null);
  const answer = await api('POST', `/schedules/${encodeURIComponent(schedule.name)}/${pause ? 'pause' : 'resume'}`);
  if (answer.status !== 200) {
    button.disabled = false;
    return showAlert(problemText(answer));
  }
  tbody.querySelector(`tr[data-schedule="${CSS.escape(schedule.name)}"]`)?.replaceWith(row(answer.body));
  status.textContent = pause
    ? `Paused ${schedule.name}: it starts no jobs until resumed.`
    : `Resumed ${schedule.name}: next run ${formatTime(answer.body.next_run_at)}.`;
  status.hidden = false;
}

async function load(cursor) {
  const search = new URLSearchParams({ limit: '100' });
  if (cursor) search.set('cursor', cursor);
  const answer = await api('GET', `/schedules?${search}`);
  if (answer.status !== 200) return showAlert(problemText(answer));
  if (!cursor) tbody.replaceChildren();
  tbody.append(...answer.body.items.map(row));
  if (tbody.rows.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No schedules yet.')));
  nextCursor = answer.body.next_cursor;
  more.hidden = !nextCursor;
  tbody.dataset.loaded = 'true';
}

more.addEventListener('click', () => void load(nextCursor));

await renderNav('schedules');
await load();
