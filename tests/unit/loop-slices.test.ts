import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { continueInSlices, LoopSlices } from '../../api/loop-slices.js';

/** Keeps the thread busy for `ms`, as a request's synchronous work does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Resolves once every step queued so far has run. */
const drained = (slices: LoopSlices) => new Promise<void>((resolve) => slices.run(resolve));

describe('LoopSlices', () => {
  it('runs a burst of 1 ms steps in order, a slice at a time, letting the event loop in between', async () => {
    const slices = new LoopSlices(5);
    const order: string[] = [];
    for (let step = 1; step <= 40; step++)
      slices.run(() => {
        busy(1);
        order.push(`step ${step}`);
        // Stands for a socket read (/health): set while the first slice runs, it must not wait for all 40 ms of steps.
        if (step === 1) setImmediate(() => order.push('between'));
      });
    await drained(slices);
    const between = order.indexOf('between');
    expect(order.filter((entry) => entry.startsWith('step'))).toEqual(Array.from({ length: 40 }, (_, k) => `step ${k + 1}`));
    expect(between).toBeGreaterThan(0);
    expect(between).toBeLessThan(15);
  });

  it("gives each sender's line a turn in turn: one step behind a flood of another's waits for one of its steps, not all", async () => {
    const slices = new LoopSlices(50);
    const order: string[] = [];
    for (let step = 1; step <= 40; step++) slices.run(() => order.push(`flood ${step}`), 'attacker');
    slices.run(() => order.push('victim'), 'victim');
    slices.run(() => order.push('victim again'), 'victim');
    await drained(slices);
    expect(order.slice(0, 5)).toEqual(['flood 1', 'victim', 'flood 2', 'victim again', 'flood 3']);
    // A sender's own steps keep their order.
    expect(order.filter((entry) => entry.startsWith('flood'))).toEqual(Array.from({ length: 40 }, (_, k) => `flood ${k + 1}`));
    expect(slices.waiting).toBe(0);
  });

  it('without slices (0) runs every step at once, so nothing gets in between', async () => {
    const slices = new LoopSlices(0);
    const order: string[] = [];
    for (let step = 1; step <= 10; step++)
      slices.run(() => {
        order.push(`step ${step}`);
        if (step === 1) setImmediate(() => order.push('between'));
      });
    expect(order).toHaveLength(10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order.at(-1)).toBe('between');
  });

  it('goes on with the steps behind one that throws', async () => {
    const slices = new LoopSlices(5);
    const ran: number[] = [];
    const thrown: unknown[] = [];
    const onError = (error: unknown) => thrown.push(error);
    process.on('uncaughtException', onError);
    try {
      slices.run(() => ran.push(1));
      slices.run(() => {
        throw new Error('a step failed');
      });
      slices.run(() => ran.push(3));
      await drained(slices);
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(ran).toEqual([1, 3]);
    expect(thrown).toEqual([new Error('a step failed')]);
    expect(slices.waiting).toBe(0);
  });
});

describe('continueInSlices', () => {
  it('drops a request whose client went away while it waited for its slice, and goes on with one still there', async () => {
    const slices = new LoopSlices(1);
    const reached: string[] = [];
    const app = express();
    // Each request finds 100 ms of its sender's other requests' work queued before it, a slice of 2 ms at a time.
    app.use((req, _res, next) => {
      for (let k = 0; k < 50; k++) slices.run(() => busy(2), req.socket.remoteAddress);
      next();
    });
    app.use(continueInSlices(slices, () => false));
    app.get('/:name', (req, res) => {
      reached.push(req.params.name!);
      res.end();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const dropped = http.get({ host: '127.0.0.1', port, path: '/dropped' });
      dropped.on('error', () => undefined);
      setTimeout(() => dropped.destroy(), 30);
      await new Promise((resolve) => dropped.on('close', resolve));
      while (slices.waiting > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const answered = await fetch(`http://127.0.0.1:${port}/kept`);
      expect(answered.status).toBe(200);
      expect(reached).toEqual(['kept']);
    } finally {
      server.close();
    }
  });
});

describe('API_SLICE_MS', () => {
  const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', NODE_ENV: 'test' };

  it('defaults to 2 and takes 0 (off); a negative or non-numeric value is refused, naming the variable', () => {
    expect(loadConfig(services).apiSliceMs).toBe(2);
    expect(loadConfig({ ...services, API_SLICE_MS: '0' }).apiSliceMs).toBe(0);
    for (const value of ['-1', 'soon', '5000'])
      expect(() => loadConfig({ ...services, API_SLICE_MS: value }), value).toThrow(/API_SLICE_MS/);
  });
});
