import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What `chrysalis login` keeps for one profile. Either an API key or a login's tokens. */
export interface Profile {
  base_url: string;
  email?: string;
  api_key?: string;
  access_token?: string;
  refresh_token?: string;
  /** ISO 8601; the access token is refreshed a minute before. */
  access_expires_at?: string;
}

export interface ConfigFile {
  profiles: Record<string, Profile>;
}

/** `$CHRYSALIS_CONFIG`, else `$XDG_CONFIG_HOME/chrysalis/config.json`, else `~/.config/chrysalis/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHRYSALIS_CONFIG) return path.resolve(env.CHRYSALIS_CONFIG);
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'chrysalis', 'config.json');
}

export function readConfig(file = configPath()): ConfigFile {
  if (!fs.existsSync(file)) return { profiles: {} };
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ConfigFile>;
  return { profiles: parsed.profiles ?? {} };
}

/** Writes the file readable by its owner only (it holds credentials), replacing it atomically. */
export function writeConfig(config: ConfigFile, file = configPath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(temp, file);
}

export function saveProfile(name: string, profile: Profile | null, file = configPath()): void {
  const config = readConfig(file);
  if (profile) config.profiles[name] = profile;
  else delete config.profiles[name];
  writeConfig(config, file);
}
