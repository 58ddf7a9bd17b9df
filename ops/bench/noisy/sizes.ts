/**
 * How big the attacks are. Full size (`scale` 1) is what issue 15 reports doing to a running instance;
 * `npm run test:noisy` runs them smaller (NOISY_SCALE, default 0.2) to stay inside CI's time budget.
 * Per-request sizes that are the attack itself (a 10 MB body, a 4.8 MB result, a 20-login burst, 50
 * endpoints) stay full size at every scale; counts and batch lengths scale.
 */
export interface NoisySizes {
  scale: number;
  /** How long each attack runs while the victim is measured. */
  windowSeconds: number;
  /** Items in each attacking batch (regex and near-limit batches). Full: 10,000. */
  batchItems: number;
  /** Seconds between the attacker's batches (and the schedules' interval). */
  batchEverySeconds: number;
  /** Regex schedules (a starter customer may have 100). */
  schedules: number;
  /** Substrates in one `POST /substrates/batch` (1,000, ~10.5 MB, at every scale). */
  substrateBatchItems: number;
  /** Substrate batches sent at once. */
  substrateBatchesInParallel: number;
  /** Failed logins per burst, all from one address. */
  loginBurst: number;
  /** Copies of `s` in the big result and the length of `s`: 300 × 16 KB = 4.8 MB. */
  resultCopies: number;
  resultStringLength: number;
  /** Big-result invokes sent at once. */
  resultCallsInParallel: number;
  /** Concurrent `GET /jobs` of the enterprise customer, per wave. Full: 3,000. */
  concurrentReads: number;
  /** Webhook endpoints that accept a connection and never answer (50 = a customer's maximum). */
  hangingEndpoints: number;
  /** The attacker's invokes whose completion is delivered to every hanging endpoint. */
  webhookJobs: number;
  /** How long to wait after an attack for the attacker's cancelled work to drain, and for the victim's jobs to end. */
  drainSeconds: number;
}

export function noisySizes(scale: number, windowSeconds: number, drainSeconds = 60): NoisySizes {
  const scaled = (full: number, least: number) => Math.max(least, Math.round(full * scale));
  return {
    scale,
    windowSeconds,
    batchItems: scaled(10_000, 100),
    batchEverySeconds: 10,
    schedules: scaled(100, 2),
    substrateBatchItems: 1000,
    substrateBatchesInParallel: 4,
    loginBurst: 20,
    resultCopies: 300,
    resultStringLength: 16_000,
    resultCallsInParallel: 3,
    concurrentReads: scaled(3000, 300),
    hangingEndpoints: 50,
    webhookJobs: scaled(20, 10),
    drainSeconds,
  };
}

/** NOISY_SCALE, NOISY_WINDOW_SECONDS and NOISY_DRAIN_SECONDS from the environment, else the given defaults. */
export function sizesFromEnv(env: NodeJS.ProcessEnv, defaults: { scale: number; windowSeconds: number; drainSeconds: number }): NoisySizes {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max)
      throw new Error(`${name} must be a number from ${min} to ${max}, got ${raw}`);
    return value;
  };
  return noisySizes(
    number('NOISY_SCALE', defaults.scale, 0.01, 10),
    number('NOISY_WINDOW_SECONDS', defaults.windowSeconds, 5, 3600),
    number('NOISY_DRAIN_SECONDS', defaults.drainSeconds, 1, 3600),
  );
}
