/**
 * The terms of service shown by `GET /api/v1/tos`. The version users accept is `TOS_VERSION`; when the
 * text changes materially, raise that version so every user is asked to accept again.
 */
export const tosText = `Chrysalis Terms of Service

1. The service. Chrysalis runs the jobs you submit (expression invocations, substrate operations, batches
   and schedules) and stores their inputs and results for your account.

2. Your account. Keep your password, refresh tokens and API keys secret. Anything done with them is done by
   your account. Revoke a key as soon as you suspect it has leaked.

3. Acceptable use. Do not submit work meant to disrupt the service or other customers, probe other
   customers' data, or evade rate limits, tiers or suspensions.

4. Billing. Usage is metered and charged against your balance at the prices of your service tier. A
   service whose balance or monthly limit is exhausted is suspended until the account is funded.

5. Data. We keep job records, usage records and webhook deliveries to run and bill the service. Job
   payloads and results are yours; we do not use them for anything else.

6. No warranty. The service is provided as is. We aim for it to be available and correct, but we are not
   liable for losses caused by outages, delays or incorrect results.

7. Changes. When these terms change we raise their version; you will be asked to accept the new version
   before making further calls.
`;
