// What the webhook pages (the endpoint list, one endpoint's deliveries, a job's page) show of endpoints and deliveries.
import { api, formatTime, h } from './console.js';

/** A badge with its own word and colour class (`.state-<word>`). */
export const badge = (word, label = word) => h('span', { class: `state state-${word}`, 'data-state': word }, label);

/** An endpoint's delivery state: active, or disabled with why. */
export const endpointState = (endpoint) =>
  endpoint.state === 'disabled'
    ? h('span', {}, badge('disabled'), endpoint.disabled_reason ? h('span', { class: 'muted' }, ` ${endpoint.disabled_reason}`) : null)
    : badge('active');

/** The circuit breaker: closed (delivering), open until a time, or half open (the next delivery is a trial). */
export function breaker(endpoint) {
  const { state, consecutive_failures: failures, open_until: openUntil } = endpoint.breaker;
  const label = { closed: 'closed', open: 'open', half_open: 'half open' }[state] ?? state;
  return h(
    'span',
    { class: 'breaker' },
    badge(`breaker-${state}`, label),
    failures ? h('span', { class: 'muted' }, ` ${failures} failure${failures === 1 ? '' : 's'} in a row`) : null,
    state === 'open' && openUntil ? h('span', { class: 'muted' }, ` until ${formatTime(openUntil)}`) : null,
  );
}

/** One attempt, as a list item: "#2 HTTP 200 in 14 ms, <time>" or its error. */
const attemptItem = (attempt) =>
  h(
    'li',
    { 'data-attempt': attempt.attempt },
    `#${attempt.attempt} `,
    attempt.status_code !== null ? `HTTP ${attempt.status_code}` : h('span', { class: 'error-text' }, attempt.error ?? 'no answer'),
    ` in ${attempt.duration_ms} ms, ${formatTime(attempt.at)}`,
    attempt.status_code !== null && attempt.error ? h('span', { class: 'error-text' }, ` ${attempt.error}`) : null,
  );

export const attemptList = (delivery) =>
  delivery.attempts.length
    ? h('ol', { class: 'attempts' }, ...delivery.attempts.map(attemptItem))
    : h('span', { class: 'muted' }, 'none yet');

/** A delivery's state: pending (being sent or waiting for a retry), succeeded or failed. */
export const deliveryState = (delivery) => badge(delivery.state);

/** POST …/redeliver: the delivery goes out again (a fresh retry schedule) under the same webhook-id. Answers the API's answer. */
export const redeliver = (delivery) =>
  api('POST', `/webhooks/${encodeURIComponent(delivery.endpoint_id)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);

/**
 * A delivery as a table row: event, then the job (`link: 'job'`) or the receiver (`link: 'endpoint'`; `'none'`: its
 * id, unlinked), state, attempts, created, and a Redeliver button (deliveries to a registered endpoint only; not
 * while pending). `onRedelivered(answer)` gets the API's answer of a redelivery; null: no button (an admin reading
 * another customer's job).
 */
export function deliveryRow(delivery, { link, onRedelivered }) {
  const button =
    delivery.endpoint_id === null
      ? h('span', { class: 'muted' }, 'to the job’s webhook_url')
      : onRedelivered === null
        ? h('span', { class: 'muted' }, '—')
        : h('button', { type: 'button', class: 'secondary', 'aria-label': `Redeliver ${delivery.event_type} ${delivery.id}` }, 'Redeliver');
  if (delivery.endpoint_id !== null && onRedelivered !== null) {
    button.disabled = delivery.state === 'pending';
    button.addEventListener('click', async () => {
      button.disabled = true;
      const answer = await redeliver(delivery);
      if (answer.status !== 202) button.disabled = false;
      onRedelivered(answer, delivery);
    });
  }
  const target =
    link === 'job'
      ? h('a', { href: `/console/jobs/${delivery.job_id}`, class: 'mono' }, delivery.job_id)
      : delivery.endpoint_id === null
        ? h('span', { class: 'muted' }, 'the job’s webhook_url')
        : link === 'none'
          ? h('span', { class: 'mono' }, delivery.endpoint_id)
          : h(
              'a',
              { href: `/console/webhooks/${delivery.endpoint_id}`, 'aria-label': `Deliveries of endpoint ${delivery.endpoint_id}` },
              'endpoint',
            );
  return h(
    'tr',
    { 'data-delivery-id': delivery.id, 'data-state': delivery.state },
    h('td', {}, delivery.event_type),
    h('td', {}, target),
    h('td', { class: 'state-cell' }, deliveryState(delivery)),
    h('td', { class: 'attempts-cell' }, attemptList(delivery)),
    h('td', {}, formatTime(delivery.created_at)),
    h('td', {}, button),
  );
}
