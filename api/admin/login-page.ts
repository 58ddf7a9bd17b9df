import { createHash } from 'node:crypto';

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] as string);

const style = `
  *{box-sizing:border-box}
  body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#151a21;color:#e6e9ee;font:15px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
  main{width:100%;max-width:22rem;padding:2rem;background:#1e252e;border:1px solid #2c3540;border-radius:10px}
  h1{margin:0 0 .25rem;font-size:1.25rem}
  p.lead{margin:0 0 1.5rem;color:#8b96a5;font-size:.9rem}
  label{display:block;margin:0 0 1rem;font-size:.85rem;color:#b6bfcb}
  input{display:block;width:100%;margin-top:.35rem;padding:.6rem .7rem;border:1px solid #3a4552;border-radius:6px;background:#12171d;color:inherit;font:inherit}
  input:focus{outline:2px solid #5b8def;border-color:transparent}
  button{width:100%;padding:.65rem;border:0;border-radius:6px;background:#5b8def;color:#fff;font:inherit;font-weight:600;cursor:pointer}
  .error{margin:0 0 1rem;padding:.6rem .7rem;border-radius:6px;background:#3b1d22;color:#ffb4bd;font-size:.9rem}
`;

/**
 * The admin pages carry no script and one known stylesheet, so their CSP allows exactly that: the
 * style block by hash, forms posting to this origin, no framing (clickjacking).
 */
export const adminPageCsp = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Chrysalis</title>
<style>${style}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

export interface LoginPageOptions {
  /** Shown above the form (wrong password, not an admin…). */
  error?: string;
  /** Pre-fills the email field after a failed attempt. */
  email?: string;
}

/** `GET /admin/login`: email and password, posted to `/admin/login`. */
export function renderLoginPage(options: LoginPageOptions = {}): string {
  return page(
    'Admin login',
    `<h1>Chrysalis admin</h1>
<p class="lead">Sign in with an administrator account to open the queue dashboard.</p>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/admin/login">
<label>Email<input type="email" name="email" autocomplete="username" required autofocus value="${escapeHtml(options.email ?? '')}"></label>
<label>Password<input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** `GET /admin/logout`: a button, because logging out changes state and so is a POST (Bull Board's menu can only link). */
export function renderLogoutPage(email: string): string {
  return page(
    'Log out',
    `<h1>Log out</h1>
<p class="lead">Signed in as ${escapeHtml(email)}.</p>
<form method="post" action="/admin/logout">
<button type="submit">Log out</button>
</form>`,
  );
}
