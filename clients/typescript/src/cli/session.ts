import { ChrysalisClient, unwrap } from '../client.js';
import { configPath, readConfig, saveProfile, type Profile } from './profiles.js';

export interface GlobalOptions {
  baseUrl?: string;
  profile?: string;
  json?: boolean;
}

export const defaultBaseUrl = 'http://127.0.0.1:3000';

/** The profile named by `--profile`, `$CHRYSALIS_PROFILE`, or `default`. */
export function profileName(options: GlobalOptions): string {
  return options.profile ?? process.env.CHRYSALIS_PROFILE ?? 'default';
}

/** `--base-url`, else `$CHRYSALIS_BASE_URL`, else the profile's, else http://127.0.0.1:3000. */
export function baseUrlOf(options: GlobalOptions, profile?: Profile): string {
  return options.baseUrl ?? process.env.CHRYSALIS_BASE_URL ?? profile?.base_url ?? defaultBaseUrl;
}

/**
 * A client for the chosen profile: `$CHRYSALIS_TOKEN` (a token or API key) wins, else the profile's API key,
 * else its access token, refreshed (and the rotated tokens saved) when it is about to expire.
 */
export function clientFor(options: GlobalOptions, onRateLimitWait?: (ms: number) => void): ChrysalisClient {
  const name = profileName(options);
  const profile = readConfig().profiles[name];
  const baseUrl = baseUrlOf(options, profile);
  const rateLimit = { onWait: (ms: number) => onRateLimitWait?.(ms) };
  const fromEnv = process.env.CHRYSALIS_TOKEN;
  if (fromEnv || !profile || profile.api_key || !profile.refresh_token) {
    return new ChrysalisClient({ baseUrl, token: fromEnv || profile?.api_key || profile?.access_token, rateLimit });
  }
  let current = profile;
  let refreshing: Promise<string | undefined> | null = null;
  const token = async () => {
    const expiresAt = current.access_expires_at ? Date.parse(current.access_expires_at) : 0;
    if (current.access_token && expiresAt - Date.now() > 60_000) return current.access_token;
    refreshing ??= refresh(baseUrl, current).then((next) => {
      current = next;
      saveProfile(name, next);
      return next.access_token;
    });
    return refreshing;
  };
  return new ChrysalisClient({ baseUrl, token, rateLimit });
}

async function refresh(baseUrl: string, profile: Profile): Promise<Profile> {
  const plain = new ChrysalisClient({ baseUrl });
  const tokens = await unwrap(plain.api.POST('/auth/refresh', { body: { refresh_token: profile.refresh_token! } }));
  return withTokens(profile, tokens);
}

export function withTokens(profile: Profile, tokens: { access_token: string; refresh_token: string; expires_in: number }): Profile {
  return {
    ...profile,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    access_expires_at: new Date(Date.now() + tokens.expires_in * 1000).toISOString(),
  };
}

export { configPath };
