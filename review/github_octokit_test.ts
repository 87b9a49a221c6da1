import assert from "node:assert/strict";
import { createOctokitPool } from "./github_octokit.ts";

/** A pool whose requests `answer` answers, as the service builds it (auth, limits, JSON). */
function poolAnswering(answer: () => Response) {
  return createOctokitPool({
    baseUrl: "http://github.invalid",
    credentials: { kind: "token", token: "t0ken" },
    timeoutMs: 5_000,
    retryBaseMs: 1,
    fetch: () => Promise.resolve(answer()),
  });
}

/** `GET /repos/o/r` through `pool`; `parse: false` reads the body itself. */
async function get(pool: ReturnType<typeof poolAnswering>, parse = true): Promise<unknown> {
  return await pool.call(
    "repos.get",
    "o/r",
    undefined,
    async ({ octokit, signal }) =>
      (await octokit.request("GET /repos/{owner}/{repo}", {
        owner: "o",
        repo: "r",
        request: parse ? { signal } : { signal, parseSuccessResponseBody: false },
      })).data,
  );
}

Deno.test("answers' bodies: JSON parsed, text as text, other bytes as bytes, as Octokit gives them", async () => {
  const cases: Array<[Response, unknown]> = [
    [Response.json({ id: 1, nested: { list: [1, "two", null] } }), {
      id: 1,
      nested: { list: [1, "two", null] },
    }],
    [
      new Response('{"id":2}', { headers: { "content-type": "application/json; charset=utf-8" } }),
      { id: 2 },
    ],
    [new Response("{not json", { headers: { "content-type": "application/json" } }), "{not json"],
    [new Response("a diff\n", { headers: { "content-type": "text/plain" } }), "a diff\n"],
    [new Response("plain", { headers: { "content-type": "" } }), "plain"],
    [new Response(null, { status: 204 }), ""],
  ];
  for (const [response, expected] of cases) {
    assert.deepEqual(await get(poolAnswering(() => response)), expected);
  }
  const bytes = new Response(new Uint8Array([1, 2, 3]), {
    headers: { "content-type": "application/octet-stream" },
  });
  const data = await get(poolAnswering(() => bytes));
  assert.ok(data instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(data)], [1, 2, 3]);
});

Deno.test("answers' bodies: JSON is parsed by JSON.parse (an id past 2^53 is a number, not a BigInt), after a retry too", async () => {
  const answers = [
    new Response("down", { status: 502 }),
    new Response('{"id":9007199254740993}', {
      headers: { "content-type": "application/json" },
    }),
  ];
  const data = await get(poolAnswering(() => answers.shift()!)) as { id: unknown };
  assert.equal(answers.length, 0, "retried once");
  assert.equal(typeof data.id, "number");
});

Deno.test("answers' bodies: a request reading its own body gets the stream; failures keep Octokit's messages", async () => {
  const data = await get(poolAnswering(() => Response.json({ id: 1 })), false);
  assert.ok(data instanceof ReadableStream);
  assert.deepEqual(await new Response(data).json(), { id: 1 });

  const refused = poolAnswering(() => Response.json({ message: "Not Found" }, { status: 404 }));
  await assert.rejects(
    get(refused),
    (e: Error) => e.message === "GitHub repos.get answered 404: Not Found",
  );
});
