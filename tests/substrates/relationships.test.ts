import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
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
    expectProblem(await request('GET', '/api/v1/relationships/stats?x=1', { token: bob.accessToken }), 400, 'validation', ['query.x']);
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

describe('traversing a dense graph', () => {
  /** A customer of its own, so these graphs stay out of alice's figures above. */
  async function newCustomer(): Promise<{ token: string; customerId: string }> {
    const user = await registerUser(request);
    const [row] = await app.sql<{ customer_id: string }>('select customer_id from users where email = $1', [user.email]);
    return { token: user.accessToken, customerId: row!.customer_id };
  }

  async function constants(token: string, count: number, from = 0): Promise<string[]> {
    const substrates = Array.from({ length: count }, (_, i) => ({ expression_type: 'constant', value: from + i }));
    const created = await request('POST', '/api/v1/substrates/batch', { token, body: { substrates } });
    expect(created.status, created.text).toBe(201);
    return created.body.items.map((s: { substrate_id: string }) => s.substrate_id);
  }

  /** Every ordered pair of `ids`, once per type, in one statement (thousands of edges through the API would be slow). */
  async function relateEveryPair(customerId: string, ids: string[], types: string[]): Promise<void> {
    await app.sql(
      `insert into relationships (id, customer_id, source_id, target_id, type)
       select gen_random_uuid(), $1, s.id, t.id, k.type
         from unnest($2::text[]) s(id), unnest($2::text[]) t(id), unnest($3::text[]) k(type)
        where s.id <> t.id`,
      [customerId, ids, types],
    );
  }

  const traverseFrom = (token: string, start: string, body: Record<string, unknown>) =>
    request('POST', '/api/v1/relationships/traverse', { token, body: { start_substrate_id: start, ...body } });

  const depthsOf = (body: { nodes: Array<{ substrate_id: string; depth: number }> }) =>
    Object.fromEntries(body.nodes.map((n) => [n.substrate_id, n.depth]));

  it('reaches every node within max_depth, however many paths lead to the shallow ones', async () => {
    // K0..K13 all related to one another (182 edges, over a billion simple paths), then K13 -> X -> Y -> Z -> W -> V.
    const { token, customerId } = await newCustomer();
    const k = await constants(token, 14);
    const [x, y, z, w, v] = await constants(token, 5, 100);
    await relateEveryPair(customerId, k, ['DEPENDENCY']);
    for (const [source, target] of [
      [k[13], x],
      [x, y],
      [y, z],
      [z, w],
      [w, v],
    ]) {
      expect((await relate(token, source!, target!)).status).toBe(201);
    }

    const everything = await traverseFrom(token, k[0]!, { direction: 'outgoing', max_depth: 10 });
    expect(everything.status).toBe(200);
    expect(depthsOf(everything.body)).toEqual({
      ...Object.fromEntries(k.map((id, i) => [id, i === 0 ? 0 : 1])),
      [x!]: 2,
      [y!]: 3,
      [z!]: 4,
      [w!]: 5,
      [v!]: 6,
    });
    expect(everything.body.edges).toHaveLength(182 + 5);

    const toDepth4 = await traverseFrom(token, k[0]!, { direction: 'outgoing', max_depth: 4 });
    expect(Object.keys(depthsOf(toDepth4.body)).sort()).toEqual([...k, x, y, z].sort());

    const toDepth3 = await traverseFrom(token, k[0]!, { direction: 'outgoing', max_depth: 3 });
    const reached = new Set(Object.keys(depthsOf(toDepth3.body)));
    expect([...reached].sort()).toEqual([...k, x, y].sort());
    // The edges walked: every edge leaving a node nearer than max_depth (Y is at depth 3, so Y -> Z is not walked).
    expect(toDepth3.body.edges).toHaveLength(182 + 2);
    for (const edge of toDepth3.body.edges) expect(reached.has(edge.source_id) && reached.has(edge.target_id)).toBe(true);

    const backwards = await traverseFrom(token, v!, { direction: 'incoming', max_depth: 10 });
    expect(depthsOf(backwards.body)).toMatchObject({ [v!]: 0, [z!]: 2, [k[13]!]: 5, [k[0]!]: 6 });
    expect(backwards.body.nodes).toHaveLength(19);
    const eitherWay = await traverseFrom(token, z!, { direction: 'both', max_depth: 4 });
    expect(depthsOf(eitherWay.body)).toMatchObject({ [z!]: 0, [y!]: 1, [w!]: 1, [x!]: 2, [v!]: 2, [k[13]!]: 3, [k[0]!]: 4 });
    expect(eitherWay.body.nodes).toHaveLength(19);
  });

  it('answers 422 naming max_depth when the walk would reach more edges than one answer holds', async () => {
    // 46 substrates, every ordered pair related once per type: 46 * 45 * 5 = 10,350 edges, past the 10,000 cap.
    const { token, customerId } = await newCustomer();
    const ids = await constants(token, 46);
    await relateEveryPair(customerId, ids, ['DEPENDENCY', 'COMPOSITION', 'INHERITANCE', 'REFERENCE', 'CUSTOM']);

    const tooMany = await traverseFrom(token, ids[0]!, { direction: 'outgoing', max_depth: 2 });
    expectProblem(tooMany, 422, 'unprocessable', ['body.max_depth']);
    expect(tooMany.body.detail).toMatch(/more than 10,000 edges/);

    // Either remedy the answer names gives a complete answer.
    const shallower = await traverseFrom(token, ids[0]!, { direction: 'outgoing', max_depth: 1 });
    expect(shallower.status).toBe(200);
    expect(shallower.body.nodes).toHaveLength(46);
    expect(shallower.body.edges).toHaveLength(45 * 5);
    const oneType = await traverseFrom(token, ids[0]!, { direction: 'both', max_depth: 10, relationship_types: ['DEPENDENCY'] });
    expect(oneType.status).toBe(200);
    expect(oneType.body.nodes).toHaveLength(46);
    expect(oneType.body.edges).toHaveLength(46 * 45);
  });
});

describe('paging one substrate’s edges', () => {
  it('follows next_cursor through every edge once, oldest first, and ends with null', async () => {
    const carol = await registerUser(request);
    const created = await request('POST', '/api/v1/substrates/batch', {
      token: carol.accessToken,
      body: { substrates: [0, 1, 2, 3].map((value) => ({ expression_type: 'constant', value })) },
    });
    const [hub, ...spokes] = created.body.items.map((item: { substrate_id: string }) => item.substrate_id) as string[];
    const edges: string[] = [];
    for (const spoke of spokes) edges.push((await relate(carol.accessToken, hub!, spoke)).body.id);
    for (const direction of ['outgoing', 'incoming'] as const) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 5; page++) {
        const query: string = cursor ? `limit=1&cursor=${cursor}` : 'limit=1';
        const answer = await request('GET', `/api/v1/relationships/${direction}/${direction === 'outgoing' ? hub : spokes[0]}?${query}`, {
          token: carol.accessToken,
        });
        expect(answer.status).toBe(200);
        seen.push(...answer.body.items.map((edge: { id: string }) => edge.id));
        cursor = answer.body.next_cursor;
        if (!cursor) break;
      }
      // Each cursor carries its edge's time to the microsecond: cut to the millisecond, it served the same edge again.
      expect(seen).toEqual(direction === 'outgoing' ? edges : [edges[0]]);
      expect(cursor).toBeNull();
    }
  });
});
