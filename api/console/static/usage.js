import { api, h, problemText, renderNav, showAlert } from './console.js';

/** The chart covers this many days up to today (UTC). */
const days = 14;
/** Usage records read at most (pages of 100). */
const maxPages = 20;

const svgNs = 'http://www.w3.org/2000/svg';
function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

const cents = (value) => `$${(value / 100).toFixed(2)}`;
const dayOf = (iso) => iso.slice(0, 10);

async function usageRecords(from) {
  const records = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const search = new URLSearchParams({ from, limit: '100' });
    if (cursor) search.set('cursor', cursor);
    const answer = await api('GET', `/billing/usage?${search}`);
    if (answer.status !== 200) throw new Error(problemText(answer));
    records.push(...answer.body.items);
    cursor = answer.body.next_cursor;
    if (!cursor) break;
  }
  return records;
}

/** Requests per day (columns) and service (bars side by side), with a legend and a table for screen readers. */
function chart(records, firstDay) {
  const dayList = Array.from({ length: days }, (_, i) => new Date(firstDay.getTime() + i * 86_400_000).toISOString().slice(0, 10));
  const services = [...new Set(records.map((record) => record.service_type))].sort();
  const totals = new Map();
  for (const record of records) {
    const key = `${dayOf(record.window_start)}|${record.service_type}`;
    totals.set(key, (totals.get(key) ?? 0) + record.request_count);
  }
  const max = Math.max(1, ...totals.values());
  const width = 720;
  const height = 260;
  const left = 48;
  const bottom = 28;
  const plotHeight = height - bottom - 12;
  const column = (width - left - 8) / days;
  const barWidth = Math.max(2, (column - 6) / Math.max(1, services.length));
  const y = (value) => 12 + plotHeight - (value / max) * plotHeight;

  const graphic = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-labelledby': 'chart-title',
    id: 'usage-chart',
  });
  graphic.append(svg('title', { id: 'chart-title' }, `Requests per day and service, last ${days} days`));
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(max * fraction);
    graphic.append(svg('line', { x1: left, x2: width - 4, y1: y(value), y2: y(value), class: 'gridline' }));
    graphic.append(svg('text', { x: left - 6, y: y(value) + 4, 'text-anchor': 'end', class: 'axis' }, value.toLocaleString('en-US')));
  }
  dayList.forEach((day, d) => {
    const x0 = left + d * column + 3;
    services.forEach((service, s) => {
      const value = totals.get(`${day}|${service}`) ?? 0;
      if (!value) return;
      const bar = svg('rect', {
        x: x0 + s * barWidth,
        y: y(value),
        width: barWidth - 1,
        height: 12 + plotHeight - y(value),
        class: `series-${s % 4}`,
        'data-day': day,
        'data-service': service,
      });
      bar.append(svg('title', {}, `${day} ${service}: ${value.toLocaleString('en-US')} requests`));
      graphic.append(bar);
    });
    if (d % 2 === 0)
      graphic.append(svg('text', { x: x0 + column / 2 - 3, y: height - 8, 'text-anchor': 'middle', class: 'axis' }, day.slice(5)));
  });

  const legend = h(
    'ul',
    { class: 'legend' },
    ...services.map((service, s) => h('li', {}, h('span', { class: `swatch series-${s % 4}` }), service)),
  );
  const rows = [...totals.entries()].sort().map(([key, value]) => {
    const [day, service] = key.split('|');
    return h('tr', {}, h('td', {}, day), h('td', {}, service), h('td', {}, value.toLocaleString('en-US')));
  });
  const table = h(
    'details',
    {},
    h('summary', {}, 'The figures as a table'),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Day'), h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Requests')),
      ),
      h('tbody', {}, ...rows),
    ),
  );
  return [graphic, legend, records.length ? table : h('p', { class: 'muted', id: 'no-usage' }, 'No usage in this period yet.')];
}

await renderNav('usage');
const today = new Date(new Date().toISOString().slice(0, 10) + 'T00:00:00Z');
const firstDay = new Date(today.getTime() - (days - 1) * 86_400_000);
const [balance, records] = await Promise.all([
  api('GET', '/billing/balance'),
  usageRecords(firstDay.toISOString()).catch((error) => error),
]);
if (balance.status === 200) {
  const b = balance.body;
  document
    .getElementById('balance')
    .replaceChildren(
      h('dt', {}, 'Balance'),
      h('dd', { id: 'balance-amount' }, cents(b.balance_usd_cents)),
      h('dt', {}, 'Charged this month'),
      h('dd', {}, cents(b.current_month_charged_usd_cents)),
      h('dt', {}, 'Charged last month'),
      h('dd', {}, cents(b.last_month_charged_usd_cents)),
    );
} else showAlert(problemText(balance));
if (records instanceof Error) showAlert(records.message);
else document.getElementById('chart').replaceChildren(...chart(records, firstDay));
