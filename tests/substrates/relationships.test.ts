import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import type { TestApp } from '../helpers/test-app.js';
import { useTestApp } from '../helpers/suite.js';

const ids: string[] = [];

const suite = useTestApp({ workers: false, users: 2 });
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ app, request } = suite);
  [alice, bob] = suite.users as [TestUser, TestUser];
  for (let i = 0; i < 5; i++) {
    const created = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'constant', value: i },
    });
    ids.push(created.body.substrate_id);
  }
});

const relate = (token: string, source: string, target: string, type = 'DEPENDENCY') =>
  request('POST', '/api/v1/relationships', { token, body: { source_id: source, target_id: target, type } });

describe('relationships', () => {
  it('creates, reads and lists edges in both directions', async () => {
    const created = await relate(alice.accessToken, ids[0]!, ids[1]!);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ source_id: ids[0], target_id: ids[1], type: 'DEPENDENCY' });
    expect((await relate(alice.accessToken, ids[0]!, ids[1]!)).status).toBe(200);
    const fetched = await request('GET', `/api/v1/relationships/${created.body.id}`, { token: alice.accessToken });
    expect(fetched.body.id).toBe(created.body.id);
    const outgoing = await request('GET', `/api/v1/relationships/outgoing/${ids[0]}`, { token: alice.accessToken });
    expect(outgoing.body.items.map((e: { target_id: string }) => e.target_id)).toEqual([ids[1]]);
    const incoming = await request('GET', `/api/v1/relationships/incoming/${ids[1]}`, { token: alice.accessToken });
    expect(incoming.body.items.map((e: { source_id: string }) => e.source_id)).toEqual([ids[0]]);
  });

  it('traverses a cycle without looping and respects the depth bound', async () => {
    // 1 -> 2 -> 3 -> 1 (a cycle) and 3 -> 4
    await relate(alice.accessToken, ids[1]!, ids[2]!, 'COMPOSITION');
    await relate(alice.accessToken, ids[2]!, ids[3]!, 'COMPOSITION');
    await relate(alice.accessToken, ids[3]!, ids[1]!, 'COMPOSITION');
    await relate(alice.accessToken, ids[3]!, ids[4]!, 'REFERENCE');
    const all = await request('POST', '/api/v1/relationships/traverse', {
      token: alice.accessToken,
      body: { start_substrate_id: ids[1], direction: 'outgoing', max_depth: 10 },
    });
    expect(all.status).toBe(200);
    expect(all.body.nodes.map((n: { substrate_id: string }) => n.substrate_id).sort()).toEqual([ids[1], ids[2], ids[3], ids[4]].sort());
    expect(all.body.nodes.find((n: { substrate_id: string }) => n.substrate_id === ids[4]).depth).toBe(3);
    const shallow = await request('POST', '/api/v1/relationships/traverse', {
      token: alice.accessToken,
      body: { start_substrate_id: ids[1], direction: 'outgoing', max_depth: 1 },
    });
    expect(shallow.body.nodes.map((n: { substrate_id: string }) => n.substrate_id).sort()).toEqual([ids[1], ids[2]].sort());
    const typed = await request('POST', '/api/v1/relationships/traverse', {
      token: alice.accessToken,
      body: { start_substrate_id: ids[1], max_depth: 10, relationship_types: ['COMPOSITION'] },
    });
    expect(typed.body.nodes.map((n: { substrate_id: string }) => n.substrate_id)).not.toContain(ids[4]);
    const incoming = await request('POST', '/api/v1/relationships/traverse', {
      token: alice.accessToken,
      body: { start_substrate_id: ids[4], direction: 'incoming', max_depth: 2 },
    });
    expect(incoming.body.nodes.map((n: { substrate_id: string }) => n.substrate_id).sort()).toEqual([ids[4], ids[3], ids[2]].sort());
  });

  it('rejects a depth over 10 with 422 (a limit) and an unknown type with 400, naming the field', async () => {
    const deep = await request('POST', '/api/v1/relationships/traverse', {
      token: alice.accessToken,
      body: { start_substrate_id: ids[0], max_depth: 11 },
    });
    expect(deep.status).toBe(422);
    expect(deep.body.errors[0].field).toBe('body.max_depth');
    const badType = await relate(alice.accessToken, ids[0]!, ids[1]!, 'FRIENDSHIP');
    expect(badType.status).toBe(400);
    expect(badType.body.errors[0].field).toBe('body.type');
  });

  it('counts edges in stats', async () => {
    const stats = await request('GET', '/api/v1/relationships/stats', { token: alice.accessToken });
    expect(stats.body).toMatchObject({
      total: 5,
      by_type: { DEPENDENCY: 1, COMPOSITION: 3, REFERENCE: 1 },
      substrates_with_relationships: 5,
    });
  });

  it("answers 404 for another customer's relationships and substrates", async () => {
    const [edge] = (await request('GET', `/api/v1/relationships/outgoing/${ids[0]}`, { token: alice.accessToken })).body.items;
    expect((await request('GET', `/api/v1/relationships/${edge.id}`, { token: bob.accessToken })).status).toBe(404);
    expect((await request('DELETE', `/api/v1/relationships/${edge.id}`, { token: bob.accessToken })).status).toBe(404);
    expect((await request('GET', `/api/v1/relationships/outgoing/${ids[0]}`, { token: bob.accessToken })).status).toBe(404);
    expect((await relate(bob.accessToken, ids[0]!, ids[1]!)).status).toBe(404);
    const bobStats = await request('GET', '/api/v1/relationships/stats', { token: bob.accessToken });
    expect(bobStats.body.total).toBe(0);
  });

  it('deletes an edge, and deleting a substrate deletes its edges', async () => {
    const [edge] = (await request('GET', `/api/v1/relationships/outgoing/${ids[0]}`, { token: alice.accessToken })).body.items;
    expect((await request('DELETE', `/api/v1/relationships/${edge.id}`, { token: alice.accessToken })).status).toBe(204);
    expect((await request('GET', `/api/v1/relationships/${edge.id}`, { token: alice.accessToken })).status).toBe(404);
    expect((await request('DELETE', `/api/v1/substrates/${ids[3]}`, { token: alice.accessToken })).status).toBe(204);
    const [left] = await app.sql<{ n: string }>('select count(*) as n from relationships where source_id = $1 or target_id = $1', [ids[3]]);
    expect(left?.n).toBe('0');
  });
});
