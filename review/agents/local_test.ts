import assert from "node:assert/strict";
import { AgentFindingSchema } from "../agent_events.ts";
import type { AgentFinding } from "../agent_events.ts";
import type { AgentContext, AgentEvent, AgentRequest } from "./agent.ts";
import { createLocalAgent, LINE_RULES } from "./local.ts";
import type { LocalAgentOptions } from "./local.ts";

const throwingFetch: typeof fetch = () => {
  throw new Error("the local agent must not use the network");
};

function request(diff: string): AgentRequest {
  return {
    reviewId: "r-1",
    attempt: 1,
    repo: "octo/app",
    pullNumber: 7,
    headSha: "h".repeat(40),
    baseSha: "b".repeat(40),
    title: "Change things",
    diff,
    files: [],
  };
}

async function review(
  diff: string,
  options: LocalAgentOptions = {},
  context: Partial<AgentContext> = {},
) {
  const events: AgentEvent[] = [];
  await createLocalAgent(options).review(request(diff), {
    signal: new AbortController().signal,
    emit: (event) => events.push(event),
    fetch: throwingFetch,
    log: () => {},
    ...context,
  });
  const findings = events.flatMap((e) => e.type === "finding" ? [e.finding] : []);
  const summary = events.flatMap((e) => e.type === "summary" ? [e.text] : []).at(-1) ?? "";
  return { events, findings, summary };
}

/** A diff that creates `path` with `lines`. */
function newFile(path: string, lines: string[]): string {
  return [
    `diff --git a/${path} b/${path}`,
    "new file mode 100644",
    "index 0000000..e69de29",
    "--- /dev/null",
    `+++ b/${path}`,
    `@@ -0,0 +1,${lines.length} @@`,
    ...lines.map((line) => `+${line}`),
    "",
  ].join("\n");
}

/** The rule entry a finding came from (quoted at the end of its description). */
const ruleId = (finding: AgentFinding) => finding.description.match(/local rule `([\w-]+)`/)?.[1];

/** `[file, line, severity, rule entry]` of each finding, for exact comparisons. */
const brief = (findings: AgentFinding[]) =>
  findings.map((f) => [f.file_path, f.line_number, f.severity, ruleId(f)]);

Deno.test("eval(userInput) and the AWS example key are found at new-file lines across hunks and files; removed and context lines are not", async () => {
  const diff = `diff --git a/src/app.ts b/src/app.ts
index 3f4e2a1..9b8c7d6 100644
--- a/src/app.ts
+++ b/src/app.ts
@@ -10,4 +10,6 @@ export function handle(req: Request) {
   const userInput = req.headers.get("x-expr") ?? "";
-  const legacy = eval(oldInput);
+  const checked = validate(userInput);
+  const result = eval(userInput);
+  console.log("result", result);
   return new Response(String(result));
 }
@@ -40,4 +42,4 @@ function config() {
   const fallback = eval(defaults);
-  const key = "AKIAABCDEFGHIJKLMNOP";
   return {
+    accessKeyId: "AKIAIOSFODNN7EXAMPLE",
     region: "eu-west-1",
diff --git a/app/db.py b/app/db.py
index 1a2b3c4..5d6e7f8 100644
--- a/app/db.py
+++ b/app/db.py
@@ -1,5 +1,7 @@
 import os
+import subprocess
 
 def lookup(cursor, user_id):
-    cursor.execute("SELECT * FROM users WHERE id = %s" % user_id)
+    cursor.execute(f"SELECT * FROM users WHERE id = {user_id}")
+    subprocess.run("rm -rf /tmp/" + user_id, shell=True)
     return cursor.fetchone()
`;
  const { findings } = await review(diff);
  assert.deepEqual(brief(findings), [
    ["src/app.ts", 12, "critical", "eval"],
    ["src/app.ts", 13, "info", "console-log"],
    ["src/app.ts", 44, "critical", "aws-access-key-id"],
    ["app/db.py", 5, "warning", "sql-string-building"],
    ["app/db.py", 6, "critical", "python-subprocess-shell"],
  ]);
  for (const finding of findings) {
    assert.equal(finding.agent_type, "local");
    assert.ok(finding.title.length > 0 && finding.description.length > 0);
    assert.ok((finding.suggestion ?? "").length > 20, finding.title);
    AgentFindingSchema.parse(finding);
  }
});

type Case = [path: string, line: string, expected: Array<[AgentFinding["severity"], string]>];

const POSITIVE: Case[] = [
  // code-execution
  ["src/a.ts", "const result = eval(userInput);", [["critical", "eval"]]],
  ["src/a.js", "window.eval(req.body.code);", [["critical", "eval"]]],
  ["src/a.ts", 'const fn = new Function("a", body);', [["critical", "new-function"]]],
  ["src/a.ts", 'setTimeout("refresh()", 1000);', [["critical", "string-timer"]]],
  ["src/a.ts", "exec(`git log ${ref}`, (err, out) => {", [["critical", "child-process-exec"]]],
  ["src/a.ts", 'execSync("rm -rf " + dir);', [["critical", "child-process-exec"]]],
  ["src/a.ts", "child_process.exec(command);", [["critical", "child-process-exec"]]],
  ["app/a.py", "result = eval(expr)", [["critical", "python-eval-exec"]]],
  ["app/a.py", "exec(code, globals())", [["critical", "python-eval-exec"]]],
  ["app/a.py", 'os.system("rm -rf " + path)', [["critical", "python-os-system"]]],
  ["app/a.py", "subprocess.run(cmd, shell=True)", [["critical", "python-subprocess-shell"]]],
  ["app/a.py", 'subprocess.Popen(f"ls {path}", shell=True)', [[
    "critical",
    "python-subprocess-shell",
  ]]],
  ["lib/run.php", "eval($code);", [["critical", "eval"]]],
  // secret
  ["src/a.ts", 'const key = "AKIAIOSFODNN7EXAMPLE";', [["critical", "aws-access-key-id"]]],
  [".env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", [[
    "critical",
    "aws-secret-access-key",
  ]]],
  ["deploy/id_rsa", "-----BEGIN RSA PRIVATE KEY-----", [["critical", "private-key"]]],
  ["deploy/key", "-----BEGIN OPENSSH PRIVATE KEY-----", [["critical", "private-key"]]],
  ["deploy/key.pem", "-----BEGIN PRIVATE KEY-----", [["critical", "private-key"]]],
  ["app/a.py", 'openai.api_key = "sk-proj-4fJd8s9dKq2LmN0pQr7StUv"', [[
    "critical",
    "openai-key",
  ]]],
  [".github/ci.yml", `token: ghp_${"aB3".repeat(12)}`, [["critical", "github-token"]]],
  ["README.md", `Use github_pat_11ABCDEFG0123456789_abcdefghijklmnop to test.`, [[
    "critical",
    "github-token",
  ]]],
  ["src/a.ts", 'const dbPassword = "hunter2!";', [["critical", "secret-assignment"]]],
  ["config/app.json", '  "api_key": "9f8e7d6c5b4a",', [["critical", "secret-assignment"]]],
  ["main.go", 'clientSecret := "Zq8v-Lm3x-Rt55"', [["critical", "secret-assignment"]]],
  // sql-injection
  ["src/a.ts", "const q = `SELECT * FROM users WHERE id = ${id}`;", [[
    "warning",
    "sql-string-building",
  ]]],
  ["src/a.ts", `db.query("SELECT * FROM users WHERE name = '" + name + "'");`, [[
    "warning",
    "sql-string-building",
  ]]],
  ["app/a.py", 'cursor.execute(f"SELECT * FROM users WHERE id = {user_id}")', [[
    "warning",
    "sql-string-building",
  ]]],
  ["app/a.py", `cursor.execute("DELETE FROM sessions WHERE user = '%s'" % user)`, [[
    "warning",
    "sql-string-building",
  ]]],
  ["app/a.py", `sql = "UPDATE users SET name = '{}' WHERE id = {}".format(name, uid)`, [[
    "warning",
    "sql-string-building",
  ]]],
  ["main.go", 'q := fmt.Sprintf("SELECT * FROM users WHERE id = %s", id)', [[
    "warning",
    "sql-string-building",
  ]]],
  // debugging
  ["src/a.ts", "  debugger;", [["warning", "debugger-statement"]]],
  ["src/a.ts", 'console.log("user", user);', [["info", "console-log"]]],
  ["app/a.py", "print(response.json())", [["info", "python-print"]]],
  ["app/a.py", "import pdb; pdb.set_trace()", [["warning", "python-breakpoint"]]],
  ["app/a.py", "    breakpoint()", [["warning", "python-breakpoint"]]],
  // todo
  ["src/a.ts", "// TODO: handle retries", [["info", "todo-comment"]]],
  ["app/a.py", "# FIXME remove after the migration", [["info", "todo-comment"]]],
  ["src/a.ts", "const limit = 10; // HACK: see #12", [["info", "todo-comment"]]],
  ["config/app.yml", "retries: 3 # XXX temporary", [["info", "todo-comment"]]],
  ["docs/guide.md", "<!-- TODO: add screenshots -->", [["info", "todo-comment"]]],
  // several rules on one line: one finding each
  ["src/a.ts", "eval(input); // TODO remove", [["critical", "eval"], ["info", "todo-comment"]]],
];

const NEGATIVE: Case[] = [
  ["src/a.ts", "const score = evaluate(input);", []],
  ["src/a.ts", "const m = /(\\d+)/.exec(text);", []],
  ["src/a.ts", "const row = pattern.exec(line);", []],
  ["src/a.ts", "db.exec(sql);", []],
  ["src/a.ts", 'exec("git status", (err) => done(err));', []],
  ["src/a.ts", "  exec(command: string): Promise<void> {", []],
  ["src/a.ts", 'const three = eval("1 + 2");', []],
  ["src/a.ts", "setTimeout(() => refresh(), 1000);", []],
  ["src/a.ts", "// never call eval(userInput) here", []],
  ["app/a.py", "value = ast.literal_eval(text)", []],
  ["app/a.py", "    def eval(self, expr):", []],
  ["app/a.py", 'subprocess.run(["ls", path], check=True)', []],
  ["app/a.py", 'os.system("clear")', []],
  ["app/a.py", 'cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))', []],
  ["src/a.ts", "const rows = await sql`SELECT * FROM users WHERE id = ${id}`;", []],
  ["src/a.ts", 'const label = "Select a file from " + dir;', []],
  ["src/a.ts", 'const maxTokens = "1024";', []],
  ["src/a.ts", 'const password = "";', []],
  ["src/a.ts", 'const config = { password: "changeme" };', []],
  ["src/a.ts", 'const apiKey = Deno.env.get("API_KEY");', []],
  [".github/ci.yml", 'token: "${{ secrets.GITHUB_TOKEN }}"', []],
  ["src/a.ts", 'if (password === "hunter2!") deny();', []],
  ["src/i18n.ts", 'password: "Your password",', []],
  ["src/a.ts", 'const klass = "task-list-item-container-wrapper";', []],
  ["src/a.ts", 'const slug = "sk-this-is-not-a-real-key-at-all";', []],
  ["docs/guide.md", "# TODO list", []],
  ["docs/guide.md", "Never use eval(userInput) in handlers.", []],
  ["README", "Never use eval(userInput) in handlers.", []],
  ["src/a.ts", 'const status = "TODO";', []],
  ["src/a.ts", 'console.error("failed", err);', []],
  ["src/a.ts", "const debuggerEnabled = true;", []],
  ["src/app_test.ts", 'console.log("timing", ms);', []],
  ["tests/test_app.py", "print(result)", []],
  ["scripts/seed.ts", 'console.log("seeded");', []],
];

Deno.test("rules table: each entry's positive and negative examples", async () => {
  for (const [path, line, expected] of [...POSITIVE, ...NEGATIVE]) {
    const { findings } = await review(newFile(path, [line]));
    assert.deepEqual(
      findings.map((f) => [f.severity, ruleId(f)]),
      expected,
      `${path}: ${line}`,
    );
    for (const f of findings) assert.deepEqual([f.file_path, f.line_number], [path, 1]);
  }
});

Deno.test("rules table: ids are unique and every entry has a positive example", () => {
  const ids = LINE_RULES.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
  const covered = new Set(POSITIVE.flatMap(([, , expected]) => expected.map(([, id]) => id)));
  assert.deepEqual(ids.filter((id) => !covered.has(id)), []);
});

Deno.test("secrets are masked in title, description and every other event", async () => {
  const ghp = `ghp_${"Xy7".repeat(12)}`;
  const { findings, events } = await review(newFile("src/keys.ts", [
    'const key = "AKIAIOSFODNN7EXAMPLE";',
    `const github = "${ghp}"; // TODO rotate ${ghp}`,
    'const dbPassword = "correct-horse-battery";',
  ]));
  assert.deepEqual(brief(findings), [
    ["src/keys.ts", 1, "critical", "aws-access-key-id"],
    ["src/keys.ts", 2, "critical", "github-token"],
    ["src/keys.ts", 2, "info", "todo-comment"],
    ["src/keys.ts", 3, "critical", "secret-assignment"],
  ]);
  assert.match(findings[0].title, /AKIA…/);
  assert.match(findings[0].description, /AKIA…/);
  assert.match(findings[1].title, /ghp_…/);
  assert.match(findings[3].title, /dbPassword/);
  assert.match(findings[3].title, /"corr…"/);
  const text = JSON.stringify(events);
  for (const secret of ["AKIAIOSFODNN7EXAMPLE", ghp, "correct-horse-battery", "AKIAIOSF"]) {
    assert.ok(!text.includes(secret), `${secret} leaked`);
  }
});

Deno.test("a short password is not shown whole", async () => {
  const { findings } = await review(newFile("src/a.ts", ['const pwd = "hunter2";']));
  assert.equal(findings.length, 1);
  assert.match(findings[0].title, /"hu…"/);
  assert.ok(!JSON.stringify(findings).includes("hunter2"));
});

Deno.test("binary and deleted files are skipped", async () => {
  const diff = `diff --git a/assets/logo.png b/assets/logo.png
new file mode 100644
index 0000000..8a1b2c3
Binary files /dev/null and b/assets/logo.png differ
diff --git a/src/old.ts b/src/old.ts
deleted file mode 100644
index 4d5e6f7..0000000
--- a/src/old.ts
+++ /dev/null
@@ -1,2 +0,0 @@
-const result = eval(userInput);
-console.log(result);
${newFile("src/new.ts", ["// FIXME before release"]).trimEnd()}
`;
  const { findings, events, summary } = await review(diff);
  assert.deepEqual(brief(findings), [["src/new.ts", 1, "info", "todo-comment"]]);
  const status = events.find((e) => e.type === "status");
  assert.deepEqual(status, {
    type: "status",
    message: "local reviewer: scanning 1 file, 1 added line (skipping 1 binary and 1 deleted file)",
  });
  assert.match(summary, /scanned 1 file \(1 added line;/);
  assert.match(summary, /1 finding: 0 critical, 0 warning, 1 info \(todo 1\)/);
});

Deno.test("a 5,000-line added file gets one large-file finding on line 1", async () => {
  const lines = Array.from({ length: 5_000 }, (_, i) => `export const v${i} = ${i};`);
  const { findings } = await review(newFile("src/generated.ts", lines));
  assert.deepEqual(brief(findings), [["src/generated.ts", 1, "info", "large-file"]]);
  assert.match(findings[0].title, /5000 added lines/);
  assert.match(findings[0].suggestion ?? "", /generated/);
  // Under the option's limit: nothing.
  const quiet = await review(newFile("src/generated.ts", lines), { maxAddedFileLines: 5_000 });
  assert.deepEqual(quiet.findings, []);
});

Deno.test("a large rewrite (as many lines removed as added) is not a large-file finding", async () => {
  const n = 1_500;
  const diff = [
    "diff --git a/src/big.ts b/src/big.ts",
    "index 1111111..2222222 100644",
    "--- a/src/big.ts",
    "+++ b/src/big.ts",
    `@@ -1,${n} +1,${n} @@`,
    ...Array.from({ length: n }, (_, i) => `-export const old${i} = ${i};`),
    ...Array.from({ length: n }, (_, i) => `+export const v${i} = ${i};`),
    "",
  ].join("\n");
  assert.deepEqual((await review(diff)).findings, []);
  // Mostly additions to an existing file: reported on the first added line.
  const grow = [
    "diff --git a/src/big.ts b/src/big.ts",
    "index 1111111..2222222 100644",
    "--- a/src/big.ts",
    "+++ b/src/big.ts",
    `@@ -20,1 +20,${n + 1} @@`,
    " export const first = 1;",
    ...Array.from({ length: n }, (_, i) => `+export const v${i} = ${i};`),
    "",
  ].join("\n");
  assert.deepEqual(brief((await review(grow)).findings), [[
    "src/big.ts",
    21,
    "info",
    "large-file",
  ]]);
});

Deno.test("events: status first, findings, one summary, exactly one done at the end", async () => {
  const { events } = await review(
    newFile("src/a.ts", ["const result = eval(userInput);", "debugger;", "// TODO x"]),
  );
  assert.deepEqual(events.map((e) => e.type), [
    "status",
    "finding",
    "finding",
    "finding",
    "summary",
    "done",
  ]);
  const summary = events.find((e) => e.type === "summary");
  assert.ok(summary?.type === "summary");
  assert.match(
    summary.text,
    /3 findings: 1 critical, 1 warning, 1 info \(code-execution 1, debugging 1, todo 1\)/,
  );
});

Deno.test("an empty diff still ends with a summary and done", async () => {
  const { events, summary } = await review("");
  assert.deepEqual(events.map((e) => e.type), ["status", "summary", "done"]);
  assert.match(summary, /No findings/);
});

Deno.test("an already-aborted signal rejects with the signal's reason and emits nothing", async () => {
  const controller = new AbortController();
  const reason = new Error("review cancelled");
  controller.abort(reason);
  const events: AgentEvent[] = [];
  await assert.rejects(
    createLocalAgent().review(request(newFile("src/a.ts", ["eval(x);"])), {
      signal: controller.signal,
      emit: (e) => events.push(e),
      fetch: throwingFetch,
      log: () => {},
    }),
    (e) => e === reason,
  );
  assert.deepEqual(events, []);
});

Deno.test("aborting during a review stops before the next file, with the signal's reason", async () => {
  const controller = new AbortController();
  const reason = new DOMException("superseded", "AbortError");
  const events: AgentEvent[] = [];
  const diff = newFile("src/a.ts", ["eval(a);"]) + newFile("src/b.ts", ["eval(b);"]);
  await assert.rejects(
    createLocalAgent().review(request(diff), {
      signal: controller.signal,
      emit: (e) => {
        events.push(e);
        if (e.type === "finding") controller.abort(reason);
      },
      fetch: throwingFetch,
      log: () => {},
    }),
    (e) => e === reason,
  );
  assert.deepEqual(
    events.flatMap((e) => e.type === "finding" ? [e.finding.file_path] : []),
    ["src/a.ts"],
  );
  assert.ok(!events.some((e) => e.type === "done" || e.type === "summary"));
});

Deno.test("never touches the network: context.fetch and globalThis.fetch throw", async () => {
  const original = globalThis.fetch;
  let calls = 0;
  const counting: typeof fetch = () => {
    calls++;
    throw new Error("network used");
  };
  globalThis.fetch = counting;
  try {
    const { findings } = await review(
      newFile("src/a.ts", ['const key = "AKIAIOSFODNN7EXAMPLE";']),
      {},
      { fetch: counting },
    );
    assert.equal(findings.length, 1);
  } finally {
    globalThis.fetch = original;
  }
  assert.equal(calls, 0);
});

Deno.test("maxFindings drops the rest and the summary says how many", async () => {
  const lines = Array.from({ length: 5 }, (_, i) => `console.log("step ${i}");`);
  const { findings, summary } = await review(newFile("src/a.ts", lines), { maxFindings: 2 });
  assert.deepEqual(findings.map((f) => f.line_number), [1, 2]);
  assert.match(summary, /2 findings: 0 critical, 0 warning, 2 info/);
  assert.match(summary, /3 more findings were dropped over the limit of 2\./);
});

Deno.test("only the first 10,000 characters of a long line are checked", async () => {
  const far = `const s = "${"a".repeat(20_000)}"; eval(userInput);`;
  const near = `eval(userInput); const s = "${"a".repeat(20_000)}";`;
  const { findings, summary } = await review(newFile("dist/app.js", [far, near]));
  assert.deepEqual(brief(findings), [["dist/app.js", 2, "critical", "eval"]]);
  assert.match(summary, /2 lines longer than 10000 characters were checked in their first 10000/);
});

Deno.test("timing: a 10,000-added-line diff is reviewed well under 2 s", async () => {
  const shapes = [
    (i: number) => `export function handler${i}(req: Request): Response {`,
    (i: number) => `  const value${i} = await db.query("SELECT * FROM t WHERE id = $1", [id]);`,
    (i: number) => `  // step ${i}: validate the input before it reaches the store`,
    (i: number) => `  const label = "Select a file from the list (${i})";`,
    (i: number) => `  return new Response(JSON.stringify({ ok: true, n: ${i} }));`,
    () => "}",
  ];
  const files = Array.from({ length: 10 }, (_, f) =>
    newFile(
      `src/module${f}.ts`,
      Array.from({ length: 1_000 }, (_, i) => shapes[i % shapes.length](i)),
    ));
  const diff = files.join("");
  const started = performance.now();
  const { findings } = await review(diff, { maxAddedFileLines: 10_000 });
  const ms = performance.now() - started;
  console.log(
    `local reviewer: 10,000 added lines in ${ms.toFixed(1)} ms (${
      (ms / 10).toFixed(2)
    } ms per 1,000 lines)`,
  );
  assert.deepEqual(findings, []);
  assert.ok(ms < 2_000, `${ms} ms`);
});
