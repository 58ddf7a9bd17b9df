import { showAlert, storeTokens } from './console.js';

/** Only a path of this console is a place to come back to (no open redirect). */
function nextPage() {
  const next = new URLSearchParams(location.search).get('next') ?? '';
  return /^\/console\/[A-Za-z0-9/_-]*$/.test(next) ? next : '/console/jobs';
}

const form = document.getElementById('sign-in');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showAlert(null);
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const response = await fetch('/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: form.email.value, password: form.password.value }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      showAlert(response.status === 401 ? 'Wrong email or password.' : (body?.detail ?? `Sign-in failed (HTTP ${response.status}).`));
      return;
    }
    storeTokens(body);
    location.assign(nextPage());
  } finally {
    button.disabled = false;
  }
});
