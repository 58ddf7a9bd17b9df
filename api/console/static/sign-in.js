import { showAlert, signIn } from './console.js';

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
    // On success the answer sets an httpOnly session cookie: nothing for this page to keep.
    const answer = await signIn(form.email.value, form.password.value);
    if (answer.status !== 201) {
      showAlert(answer.status === 401 ? 'Wrong email or password.' : (answer.body?.detail ?? `Sign-in failed (HTTP ${answer.status}).`));
      return;
    }
    location.assign(nextPage());
  } finally {
    button.disabled = false;
  }
});
