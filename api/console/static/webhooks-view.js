// What the webhook pages (the endpoint list, one endpoint's deliveries, a job's page) show of endpoints and deliveries.
import { formatTime, h } from './console.js';

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
