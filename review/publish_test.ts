import assert from "node:assert/strict";
import { REVIEW_COMMENT_MARKER } from "./comment.ts";
import { ReviewError } from "./errors.ts";
import { createGitHubClient } from "./github.ts";
import { postOnce } from "./publish.ts";

/** A GitHub answering from `route`, recording each request as `METHOD /path`. */
function fakeGitHub(route: (method: string, path: string) => Response) {
  const seen: string[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    const path = new URL(String(input)).pathname;
    seen.push(`${init?.method ?? "GET"} ${path}`);
    return Promise.resolve(route(init?.method ?? "GET", path));
  };
  return { seen, client: createGitHubClient({ baseUrl: "http://x.invalid", token: "t", fetch }) };
}

Deno.test("a deleted comment is recreated; when that create fails, its error is reported as is", async () => {
  const { seen, client } = fakeGitHub((method, path) =>
    method === "PATCH"
      ? Response.json({ message: "Not Found" }, { status: 404 })
      : path === "/user"
      ? Response.json({ login: "review-bot" })
      : method === "GET"
      ? Response.json([])
      : Response.json({ message: "boom" }, { status: 500 })
  );
  const error = await postOnce(client, "octo/app", 3, "y", 12345).then(
    () => assert.fail("postOnce succeeded"),
    (e) => e,
  );
  assert.ok(error instanceof ReviewError);
  assert.equal(error.message, "GitHub issues.createComment octo/app#3 answered 500: boom");
  assert.equal(error.retryable, true);
  assert.deepEqual(seen, [
    "PATCH /repos/octo/app/issues/comments/12345",
    "GET /user",
    "GET /repos/octo/app/issues/3/comments",
    "POST /repos/octo/app/issues/3/comments",
    // The 500 leaves it open whether GitHub created it: look again before giving up.
    "GET /repos/octo/app/issues/3/comments",
  ]);
});

Deno.test("after an ambiguous create, the comment GitHub did create is adopted", async () => {
  let created = false;
  const { seen, client } = fakeGitHub((method, path) => {
    if (path === "/user") return Response.json({ login: "review-bot" });
    if (method === "POST") {
      created = true;
      return Response.json({ message: "bad gateway" }, { status: 502 });
    }
    const mine = {
      id: 7,
      body: `${REVIEW_COMMENT_MARKER}\nbody`,
      html_url: "https://github.example/c/7",
      user: { login: "review-bot", type: "User" },
    };
    return Response.json(created ? [mine] : []);
  });
  assert.deepEqual(await postOnce(client, "octo/app", 3, "body"), {
    id: 7,
    url: "https://github.example/c/7",
  });
  assert.equal(seen.filter((r) => r.startsWith("POST")).length, 1);
});
