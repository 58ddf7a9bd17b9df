import { describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { useTestApp } from '../helpers/suite.js';

// No workers: these are answers of POST /schedules alone.
const suite = useTestApp({ users: 1 });

const schedule = (name: string, cron: string) =>
  suite.request('POST', '/api/v1/schedules', {
    token: suite.users[0]!.accessToken,
    body: { name, cron, job: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } } } },
  });

describe("cron-parser's extensions", () => {
  // cron-parser draws a new random value for H each time it reads the expression, and BullMQ reads it again
  // before every run: `H * * * * *` passed as "once a minute" yet fired at random, runs 2 to 60 s apart.
  it.each([
    ['H * * * * *', 'second field "H"'],
    ['H * * * *', 'minute field "H"'],
    ['0 H/15 * * * *', 'minute field "H/15"'],
    ['H(0-29) 9 * * *', 'minute field "H(0-29)"'],
    ['0 9 * * H#3', 'day-of-week field "H#3"'],
  ])('refuses %s with 422 naming body.cron and saying H is not supported', async (cron, field) => {
    const response = await schedule('hashed', cron);
    expectProblem(response, 422, 'unprocessable', ['body.cron']);
    expect(response.body.detail).toContain(`body.cron ${field} uses H, which is not supported`);
    expect(response.body.detail).toMatch(/random/);
  });

  it.each([
    ['a plain six-field cron', '30 0 9 * * *'],
    ['? for any value', '0 9 ? * *'],
    ['L, the last day of the month', '0 0 L * *'],
    ['# for the nth weekday of the month', '0 9 * * 1#1'],
    ['a day-of-week name with an H in it', '0 9 * * THU'],
  ])('still accepts %s (%s): the other extensions are deterministic', async (_label, cron) => {
    const response = await schedule('fixed', cron);
    expect(response.status, response.text).toBeLessThan(300);
    expect(response.body).toMatchObject({ cron, next_run_at: expect.any(String) });
  });

  it('left no schedule behind for the refused ones', async () => {
    const listed = await suite.request('GET', '/api/v1/schedules', { token: suite.users[0]!.accessToken });
    expect(listed.body.items.map((item: { name: string }) => item.name)).toEqual(['fixed']);
  });
});
