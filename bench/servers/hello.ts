/**
 * Baseline 1: bare Fastify, no plugins, no logger. `PORT` on 127.0.0.1.
 * - `GET /`: `{"hello":"world"}`.
 * - `GET /bytes/:n`: a JSON body of exactly `n` bytes (built once per size), to set a response's
 *   size apart from the work behind it.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

const bodies = new Map<number, string>();
app.get<{ Params: { n: string } }>('/bytes/:n', async (req, reply) => {
  const n = Math.min(Math.max(Number(req.params.n) || 0, 11), 1_000_000);
  let body = bodies.get(n);
  if (body === undefined) {
    body = JSON.stringify({ data: 'x'.repeat(n - 11) });
    bodies.set(n, body);
  }
  return reply.type('application/json; charset=utf-8').send(body);
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)));
}
