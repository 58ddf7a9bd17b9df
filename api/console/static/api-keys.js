import { api, formatTime, h, problemText, renderNav, showAlert } from './console.js';

const form = document.getElementById('create-key');
const newKey = document.getElementById('new-key');
const tbody = document.getElementById('keys');

async function revoke(key) {
  if (!confirm(`Revoke the key "${key.name}"? Calls made with it will fail at once.`)) return;
  const answer = await api('DELETE', `/api-keys/${encodeURIComponent(key.id)}`);
  if (answer.status !== 204) return showAlert(problemText(answer));
  await list();
}

async function list() {
  const answer = await api('GET', '/api-keys?limit=100');
  if (answer.status !== 200) return showAlert(problemText(answer));
  tbody.replaceChildren(
    ...(answer.body.items.length
      ? answer.body.items.map((key) => {
          const button = key.revoked_at
            ? null
            : h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke ${key.name}` }, 'Revoke');
          button?.addEventListener('click', () => void revoke(key));
          return h(
            'tr',
            { 'data-key-id': key.id },
            h('td', {}, key.name),
            h('td', { class: 'mono' }, `${key.prefix}…`),
            h('td', {}, key.service_type),
            h('td', {}, formatTime(key.created_at)),
            h(
              'td',
              {},
              key.revoked_at
                ? `revoked ${formatTime(key.revoked_at)}`
                : key.expires_at
                  ? `expires ${formatTime(key.expires_at)}`
                  : 'active',
            ),
            h('td', {}, button),
          );
        })
      : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No API keys yet.'))]),
  );
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showAlert(null);
  const answer = await api('POST', '/api-keys', { name: form.name.value, service_type: form.service_type.value });
  if (answer.status !== 201) return showAlert(problemText(answer));
  form.reset();
  // The key is in this answer only: the API never shows it again, and neither does this page once left.
  newKey.replaceChildren(
    h('p', {}, h('strong', {}, `Your new key "${answer.body.name}". `), 'Copy it now: it will not be shown again.'),
    h('p', {}, h('code', { id: 'created-key' }, answer.body.key)),
  );
  newKey.hidden = false;
  await list();
});

await renderNav('api-keys');
await list();
