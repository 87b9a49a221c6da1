/**
 * The ingest floor: a bare `Deno.serve` that does what a webhook receiver cannot skip — read the
 * body, check the same HMAC signature as the service, store the body with one `kv.set` — and
 * nothing else. `bench/ingest.ts` sets the service against it.
 *
 *   deno run -A bench/floor_server.ts <kv-path> <secret>
 *
 * Prints one JSON line `{"port": n}` once it listens.
 *
 * @module
 */
import { verifySignature } from "../routes/signature.ts";

const [path, secret] = Deno.args;
const kv = await Deno.openKv(path);
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ port, message: "floor listening" })),
}, async (req) => {
  const bytes = new Uint8Array(await req.arrayBuffer());
  const signature = req.headers.get("x-hub-signature-256") ?? "";
  if (!(await verifySignature(secret, bytes, signature))) {
    return Response.json({ error: "bad signature" }, { status: 401 });
  }
  const id = crypto.randomUUID();
  await kv.set(["floor", id], bytes);
  return Response.json({ id }, { status: 202 });
});
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  kv.close();
  Deno.exit(0);
});
