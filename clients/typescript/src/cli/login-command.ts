import { ChrysalisClient, unwrap } from '../client.js';
import { readConfig, saveProfile, type Profile } from './profiles.js';
import { UsageError, type Output } from './output.js';
import { baseUrlOf, configPath, profileName, withTokens, type GlobalOptions } from './session.js';

export interface LoginOptions {
  email?: string;
  password?: string;
  passwordStdin?: boolean;
  apiKey?: string;
  apiKeyStdin?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Checks the credentials against the API (`GET /auth/me`) before storing them, so a typo is caught now. */
export async function loginCommand(globals: GlobalOptions, options: LoginOptions, out: Output): Promise<number> {
  const name = profileName(globals);
  const baseUrl = baseUrlOf(globals, readConfig().profiles[name]);
  const apiKey = options.apiKeyStdin ? await readStdin() : options.apiKey;
  let profile: Profile;
  if (apiKey) {
    profile = { base_url: baseUrl, api_key: apiKey };
  } else {
    if (!options.email) throw new UsageError('give --email (with --password-stdin or --password), or --api-key');
    const password = options.passwordStdin ? await readStdin() : options.password;
    if (!password) throw new UsageError('give the password with --password-stdin (or --password)');
    const tokens = await unwrap(new ChrysalisClient({ baseUrl }).api.POST('/auth/login', { body: { email: options.email, password } }));
    profile = withTokens({ base_url: baseUrl, email: options.email }, tokens);
  }
  const me = await unwrap(new ChrysalisClient({ baseUrl, token: profile.api_key ?? profile.access_token }).api.GET('/auth/me'));
  saveProfile(name, profile);
  out.result(
    { profile: name, base_url: baseUrl, email: me.email, customer_id: me.customer_id, config: configPath() },
    (value) =>
      `logged in as ${value.email ?? `an API key of customer ${value.customer_id}`} (profile ${value.profile}, ${value.base_url}); saved in ${value.config}`,
  );
  return 0;
}

export async function logoutCommand(globals: GlobalOptions, out: Output): Promise<number> {
  const name = profileName(globals);
  const profile = readConfig().profiles[name];
  if (profile?.refresh_token) {
    // The profile goes whatever the answer: an expired or revoked token is as good as logged out.
    await new ChrysalisClient({ baseUrl: baseUrlOf(globals, profile) }).api
      .POST('/auth/logout', { body: { refresh_token: profile.refresh_token } })
      .catch(() => undefined);
  }
  saveProfile(name, null);
  out.result({ profile: name, removed: Boolean(profile) }, (value) =>
    value.removed ? `profile ${value.profile} removed` : `no profile ${value.profile}`,
  );
  return 0;
}
