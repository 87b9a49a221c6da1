import assert from "node:assert/strict";
import fc from "fast-check";
// @ts-types="@types/picomatch"
import picomatch from "picomatch";
import {
  atLeast,
  DEFAULT_IGNORE,
  DEFAULT_REPO_CONFIG,
  describeLeftOut,
  type LeftOut,
  parseRepoConfig,
  type RepoConfig,
  RepoConfigSchema,
  selectDiff,
} from "./repo_config.ts";
import { splitDiff } from "./diff.ts";

/** One file's section of a unified diff. */
function section(path: string, opts: { binary?: boolean; deleted?: boolean; body?: string } = {}) {
  const head = `diff --git a/${path} b/${path}\n`;
  if (opts.binary) return `${head}index 1..2 100644\nBinary files a/${path} and b/${path} differ\n`;
  if (opts.deleted) {
    return `${head}deleted file mode 100644\n--- a/${path}\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n`;
  }
  return `${head}--- a/${path}\n+++ b/${path}\n@@ -0,0 +1 @@\n+${opts.body ?? "x"}\n`;
}

const bytes = (text: string) => new TextEncoder().encode(text).length;
const config = (patch: Partial<RepoConfig>): RepoConfig => ({ ...DEFAULT_REPO_CONFIG, ...patch });

Deno.test("parseRepoConfig: no file gives the defaults and no problems", () => {
  assert.deepEqual(parseRepoConfig(null), { config: DEFAULT_REPO_CONFIG, problems: [] });
  assert.deepEqual(parseRepoConfig(""), { config: DEFAULT_REPO_CONFIG, problems: [] });
  assert.deepEqual(parseRepoConfig("# only a comment\n"), {
    config: DEFAULT_REPO_CONFIG,
    problems: [],
  });
  assert.deepEqual(RepoConfigSchema.parse({}), DEFAULT_REPO_CONFIG);
});

Deno.test("parseRepoConfig: a full valid file sets every field", () => {
  const text = `
enabled: false
drafts: true
auto_review: false
paths:
  ignore: ["*.md", "docs/"]
  include:
    - "src/**"
instructions: |
  Focus on security.
model: claude-sonnet-4
min_severity: low
fail_on: high
max_files: 50
max_diff_bytes: 200000
`;
  assert.deepEqual(parseRepoConfig(text), {
    config: {
      enabled: false,
      drafts: true,
      auto_review: false,
      paths: { ignore: ["*.md", "docs/"], include: ["src/**"] },
      instructions: "Focus on security.\n",
      model: "claude-sonnet-4",
      min_severity: "low",
      fail_on: "high",
      max_files: 50,
      max_diff_bytes: 200000,
    },
    problems: [],
  });
});

Deno.test("parseRepoConfig: empty values count as absent; one glob may be a string", () => {
  const { config, problems } = parseRepoConfig("model:\npaths:\n  ignore: '*.md'\n  include:\n");
  assert.deepEqual(problems, []);
  assert.deepEqual(config, { ...DEFAULT_REPO_CONFIG, paths: { ignore: ["*.md"], include: [] } });
});

Deno.test("parseRepoConfig: `warning` means medium; severities are case-insensitive", () => {
  const { config, problems } = parseRepoConfig("min_severity: warning\nfail_on: Critical\n");
  assert.deepEqual(problems, []);
  assert.equal(config.min_severity, "medium");
  assert.equal(config.fail_on, "critical");
});

Deno.test("parseRepoConfig: each invalid field is named and the defaults are kept", () => {
  const cases: [string, string][] = [
    [
      "min_severity: urgent",
      'min_severity: expected one of critical, high, medium, low, info (got "urgent")',
    ],
    ["fail_on: 3", "fail_on: expected one of critical, high, medium, low, info (got 3)"],
    ["enabled: yes", 'enabled: expected true or false (got "yes")'],
    ["drafts: 1", "drafts: expected true or false (got 1)"],
    ["auto_review: [true]", "auto_review: expected true or false (got a list of 1)"],
    [
      "paths: [a]",
      "paths: expected a mapping with `ignore` and/or `include` (got a list of 1)",
    ],
    ["paths:\n  ignore: [a, b, 3]", "paths.ignore[2]: expected a string (got 3)"],
    ["paths:\n  include: {a: 1}", "paths.include: expected a list of globs (got a mapping)"],
    ['paths:\n  ignore: [""]', 'paths.ignore[0]: expected a non-empty glob (got "")'],
    ["paths:\n  ignore: ['!']", 'paths.ignore[0]: expected a valid glob (got "!")'],
    ["paths:\n  exclude: [a]", 'paths: unknown field "exclude" (did you mean "ignore"?)'],
    [
      `instructions: ${"a".repeat(8001)}`,
      "instructions: expected at most 8000 characters (got 8001 characters)",
    ],
    ["instructions: 12", "instructions: expected a string (got 12)"],
    [`model: ${"m".repeat(201)}`, "model: expected at most 200 characters (got 201 characters)"],
    ["model: ''", 'model: expected a non-empty string (got "")'],
    ["max_files: 0", "max_files: expected an integer from 1 to 3000 (got 0)"],
    ["max_files: 3001", "max_files: expected an integer from 1 to 3000 (got 3001)"],
    ["max_files: 2.5", "max_files: expected an integer from 1 to 3000 (got 2.5)"],
    ["max_files: '10'", 'max_files: expected an integer from 1 to 3000 (got "10")'],
    ["max_diff_bytes: 100", "max_diff_bytes: expected an integer from 1024 to 16777216 (got 100)"],
    [
      "max_diff_bytes: .inf",
      "max_diff_bytes: expected an integer from 1024 to 16777216 (got Infinity)",
    ],
    ["max_file: 3", 'unknown field "max_file" (did you mean "max_files"?)'],
    ["colour: blue", 'unknown field "colour"'],
    ["- a\n- b", "expected a mapping of settings at the top level (got a list of 2)"],
    ["just text", 'expected a mapping of settings at the top level (got "just text")'],
  ];
  for (const [text, problem] of cases) {
    assert.deepEqual(
      parseRepoConfig(text),
      { config: DEFAULT_REPO_CONFIG, problems: [problem] },
      text,
    );
  }
});

Deno.test("parseRepoConfig: several bad fields are all named; valid ones are not used", () => {
  const { config, problems } = parseRepoConfig(
    "enabled: false\nmin_severity: urgent\nmax_file: 3\npaths:\n  ignore: [a, 1]\n",
  );
  assert.deepEqual(config, DEFAULT_REPO_CONFIG);
  assert.deepEqual(problems.toSorted(), [
    'min_severity: expected one of critical, high, medium, low, info (got "urgent")',
    "paths.ignore[1]: expected a string (got 1)",
    'unknown field "max_file" (did you mean "max_files"?)',
  ]);
});

Deno.test("parseRepoConfig: the number of problems is bounded", () => {
  const text = `paths:\n  ignore: [${Array.from({ length: 100 }, (_, i) => i).join(", ")}]\n`;
  const { problems } = parseRepoConfig(text);
  assert.equal(problems.length, 21);
  assert.equal(problems[20], "… and 80 more problems");
});

Deno.test("parseRepoConfig: invalid YAML names the line", () => {
  const { config, problems } = parseRepoConfig("enabled: true\nmodel: [a\nmax_files: 3\n");
  assert.deepEqual(config, DEFAULT_REPO_CONFIG);
  assert.ok(problems.length >= 1);
  assert.match(problems[0], /^invalid YAML at line \d+, column \d+: /);
  assert.match(problems.join("\n"), /line [23]\b/);

  const duplicate = parseRepoConfig("enabled: true\nenabled: false\n");
  assert.deepEqual(duplicate.config, DEFAULT_REPO_CONFIG);
  assert.match(duplicate.problems[0], /^invalid YAML at line 2, column 1: Map keys must be unique/);

  const tabs = parseRepoConfig("paths:\n\tignore: [a]\n");
  assert.match(tabs.problems[0], /^invalid YAML at line 2, /);
});

Deno.test("parseRepoConfig: alias bombs and huge or deep files are bounded and never throw", () => {
  const bomb = [
    "a: &a [x, x, x, x, x, x, x, x, x, x]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
    "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
  ].join("\n");
  assert.deepEqual(parseRepoConfig(bomb), {
    config: DEFAULT_REPO_CONFIG,
    problems: ["invalid YAML: too many aliases"],
  });

  // A few aliases are fine.
  const reuse = parseRepoConfig("paths:\n  ignore: &globs ['*.md']\n  include: *globs\n");
  assert.deepEqual(reuse.problems, []);
  assert.deepEqual(reuse.config.paths, { ignore: ["*.md"], include: ["*.md"] });

  const big = `instructions: "${"a".repeat(100 * 1024)}"\n`;
  assert.deepEqual(parseRepoConfig(big), {
    config: DEFAULT_REPO_CONFIG,
    problems: ["the file is larger than 64 KiB; it was not read"],
  });
  // Multi-byte characters count as bytes: 30,000 "é" are 60,000 bytes (fine), 40,000 are not.
  assert.deepEqual(parseRepoConfig(`# ${"é".repeat(30000)}\n`).problems, []);
  assert.equal(parseRepoConfig(`# ${"é".repeat(40000)}\n`).problems.length, 1);

  const deep = parseRepoConfig(`${"[".repeat(30000)}${"]".repeat(30000)}`);
  assert.deepEqual(deep.config, DEFAULT_REPO_CONFIG);
  assert.ok(deep.problems.length >= 1 && deep.problems.length <= 6);
  const keys = parseRepoConfig("a:\n ".repeat(3000));
  assert.equal(keys.problems.length, 6);
  assert.match(keys.problems[5], /^… and \d+ more problems$/);
});

Deno.test("parseRepoConfig: the returned config is a copy; the defaults are frozen", () => {
  const { config } = parseRepoConfig(null);
  config.paths.ignore.push("x");
  config.enabled = false;
  assert.deepEqual(DEFAULT_REPO_CONFIG.paths.ignore, []);
  assert.equal(DEFAULT_REPO_CONFIG.enabled, true);
  assert.ok(Object.isFrozen(DEFAULT_REPO_CONFIG.paths.ignore));
  assert.ok(Object.isFrozen(DEFAULT_IGNORE));
});

Deno.test("selectDiff: the defaults ignore lock, minified, vendored, generated and binary-ish files at any depth", () => {
  const ignored = [
    "package-lock.json",
    "web/package-lock.json",
    "deno.lock",
    "a/b/deno.lock",
    "a.min.js",
    "static/js/a.min.js",
    "vendor/x.go",
    "svc/vendor/github.com/x/y.go",
    "dist/y.js",
    "packages/ui/dist/y.js",
    "logo.png",
    "docs/img/Logo.PNG",
    "node_modules/.bin/tool",
    "src/__generated__/schema.ts",
    "api/v1/api.pb.go",
    "Cargo.lock",
    "go.sum",
    "fonts/a.woff2",
  ];
  const reviewed = ["src/main.ts", "README.md", "vendoring.md", "src/distance.ts", "lock.ts"];
  const diff = [...ignored, ...reviewed].map((p) => section(p)).join("");
  const result = selectDiff(diff, DEFAULT_REPO_CONFIG);
  assert.deepEqual(result.files, reviewed);
  assert.deepEqual(result.leftOut, ignored.map((path) => ({ path, why: "ignored" })));
  assert.equal(result.diff, reviewed.map((p) => section(p)).join(""));
});

Deno.test("selectDiff: `paths.include` narrows the review", () => {
  const diff = ["src/a.ts", "test/b.ts", "src/deep/c.ts", "README.md", "src/yarn.lock"]
    .map((p) => section(p)).join("");
  const result = selectDiff(diff, config({ paths: { ignore: [], include: ["src/", "*.md"] } }));
  assert.deepEqual(result.files, ["src/a.ts", "src/deep/c.ts", "README.md"]);
  assert.deepEqual(result.leftOut, [
    { path: "test/b.ts", why: "not_included" },
    { path: "src/yarn.lock", why: "ignored" },
  ]);
  // An anchored glob matches from the root only.
  const anchored = selectDiff(
    section("src/a.ts") + section("lib/src/b.ts"),
    config({ paths: { ignore: [], include: ["/src/**"] } }),
  );
  assert.deepEqual(anchored.files, ["src/a.ts"]);
});

Deno.test("selectDiff: user `ignore` adds to the defaults, and `!` re-includes", () => {
  const diff = [
    "docs/guide.md",
    "src/a.ts",
    "deno.lock",
    "yarn.lock",
    "src/gen/x.ts",
    "x/src/gen/y.ts",
  ]
    .map((p) => section(p)).join("");
  const result = selectDiff(
    diff,
    config({ paths: { ignore: ["*.md", "src/gen", "!deno.lock"], include: [] } }),
  );
  assert.deepEqual(result.files, ["src/a.ts", "deno.lock", "x/src/gen/y.ts"]);
  assert.deepEqual(result.leftOut, [
    { path: "docs/guide.md", why: "ignored" },
    { path: "yarn.lock", why: "ignored" },
    { path: "src/gen/x.ts", why: "ignored" },
  ]);
});

Deno.test("selectDiff: compiled globs are shared across reviews without mixing configs", () => {
  const diff = ["src/a.ts", "lib/b.ts", "docs/C.md", "docs/E.MD"].map((p) => section(p)).join("");
  const src = config({ paths: { ignore: ["*.md"], include: ["src/", "docs/"] } });
  const lib = config({ paths: { ignore: ["!*.md", "*.MD"], include: ["lib/", "docs/"] } });
  const first = [selectDiff(diff, src), selectDiff(diff, lib)];
  assert.deepEqual(first.map((r) => r.files), [
    ["src/a.ts", "docs/E.MD"],
    ["lib/b.ts", "docs/C.md"],
  ]);
  // Again, interleaved: the same answers.
  assert.deepEqual([selectDiff(diff, src), selectDiff(diff, lib)], first);
  // A repository's glob stays case-sensitive even where a default glob (case-insensitive) exists.
  const lock = section("Deno.LOCK") + section("x.lock");
  const relock = config({ paths: { ignore: ["!*.lock"], include: [] } });
  assert.deepEqual(selectDiff(lock, relock).files, ["x.lock"]);
});

Deno.test("selectDiff: binary files are left out; deleted files are kept", () => {
  const diff = section("src/a.ts") + section("assets/blob.dat", { binary: true }) +
    section("src/old.ts", { deleted: true });
  const result = selectDiff(diff, DEFAULT_REPO_CONFIG);
  assert.deepEqual(result.files, ["src/a.ts", "src/old.ts"]);
  assert.deepEqual(result.leftOut, [{ path: "assets/blob.dat", why: "binary" }]);
  assert.equal(result.diff, section("src/a.ts") + section("src/old.ts", { deleted: true }));
});

Deno.test("selectDiff: paths with spaces and unicode", () => {
  const quoted = 'diff --git "a/dist/\\303\\274 x.js" "b/dist/\\303\\274 x.js"\n+x\n';
  const diff = section("my docs/ünïcode file.ts") + quoted + section("a b/c d.md");
  const result = selectDiff(diff, config({ paths: { ignore: ["*.md"], include: [] } }));
  assert.deepEqual(result.files, ["my docs/ünïcode file.ts"]);
  assert.deepEqual(result.leftOut, [
    { path: "dist/ü x.js", why: "ignored" },
    { path: "a b/c d.md", why: "ignored" },
  ]);
});

Deno.test("selectDiff: `max_files` keeps the first files", () => {
  const diff = ["a.ts", "yarn.lock", "b.ts", "c.ts", "d.ts"].map((p) => section(p)).join("");
  const result = selectDiff(diff, config({ max_files: 2 }));
  assert.deepEqual(result.files, ["a.ts", "b.ts"]);
  assert.deepEqual(result.leftOut, [
    { path: "yarn.lock", why: "ignored" },
    { path: "c.ts", why: "max_files" },
    { path: "d.ts", why: "max_files" },
  ]);
});

Deno.test("selectDiff: `max_diff_bytes` cuts on a file boundary and reports the rest", () => {
  const a = section("a.ts", { body: "a".repeat(600) });
  const b = section("b.ts", { body: "b".repeat(600) });
  const c = section("c.ts", { body: "c" });
  const result = selectDiff(a + b + section("x.png") + c, config({ max_diff_bytes: 1024 }));
  assert.equal(result.diff, a);
  assert.deepEqual(result.files, ["a.ts"]);
  assert.deepEqual(result.leftOut, [
    { path: "b.ts", why: "max_diff_bytes" },
    { path: "x.png", why: "ignored" },
    { path: "c.ts", why: "max_diff_bytes" },
  ]);

  // Exactly at the bound fits.
  assert.deepEqual(selectDiff(a + b, config({}), { maxBytes: bytes(a + b) }).files, [
    "a.ts",
    "b.ts",
  ]);
  // The smaller of `max_diff_bytes` and `options.maxBytes` applies.
  assert.deepEqual(selectDiff(a + c, config({ max_diff_bytes: 4096 }), { maxBytes: 100 }), {
    diff: "",
    files: [],
    leftOut: [{ path: "a.ts", why: "max_diff_bytes" }, { path: "c.ts", why: "max_diff_bytes" }],
  });
  // Bytes are UTF-8 bytes, not characters.
  const wide = section("w.ts", { body: "é".repeat(300) });
  assert.deepEqual(selectDiff(wide, DEFAULT_REPO_CONFIG, { maxBytes: wide.length + 10 }).files, []);
});

Deno.test("selectDiff: no diff sections gives nothing", () => {
  assert.deepEqual(selectDiff("", DEFAULT_REPO_CONFIG), { diff: "", files: [], leftOut: [] });
});

Deno.test("atLeast compares severities, critical most severe", () => {
  assert.equal(atLeast("critical", "info"), true);
  assert.equal(atLeast("medium", "medium"), true);
  assert.equal(atLeast("high", "medium"), true);
  assert.equal(atLeast("low", "medium"), false);
  assert.equal(atLeast("info", "critical"), false);
});

Deno.test("describeLeftOut: one bounded line per reason", () => {
  assert.deepEqual(describeLeftOut([]), []);
  const leftOut: LeftOut[] = [
    { path: "package-lock.json", why: "ignored" },
    { path: "x.png", why: "binary" },
    { path: "dist/app.js", why: "ignored" },
    { path: "c.ts", why: "max_diff_bytes" },
    { path: "yarn.lock", why: "ignored" },
    { path: `${"deep/".repeat(50)}name.ts`, why: "ignored" },
    { path: "z.ts", why: "max_files" },
    { path: "t.ts", why: "not_included" },
  ];
  const lines = describeLeftOut(leftOut);
  assert.deepEqual(lines, [
    "4 files ignored by path rules (package-lock.json, dist/app.js, yarn.lock, …)",
    "1 file outside `paths.include` (t.ts)",
    "1 binary file (x.png)",
    "1 file over the `max_files` limit (z.ts)",
    "1 file past the diff size limit (c.ts)",
  ]);
  const long = describeLeftOut(
    Array.from(
      { length: 5 },
      (_, i) => ({ path: `${i}/${"x".repeat(500)}`, why: "binary" as const }),
    ),
  );
  assert.equal(long.length, 1);
  assert.ok(long[0].length <= 300, long[0]);
  assert.match(long[0], /^5 binary files \(…x+, …x+, …x+, …\)$/);
});

Deno.test("selectDiff property: kept diff is whole input sections in order, within the bound; every file accounted for once", () => {
  const dir = fc.constantFrom("src", "dist", "vendor", "a b", "ü", "node_modules", "lib", "docs");
  const name = fc.constantFrom(
    "x.ts",
    "package-lock.json",
    "logo.png",
    "a.min.js",
    "deno.lock",
    "Main.go",
    "ñ ö.md",
    "README.md",
  );
  const path = fc.tuple(fc.array(dir, { maxLength: 3 }), name, fc.nat(99))
    .map(([dirs, file, n]) => [...dirs, `${n}${file}`].join("/"));
  const line = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ""));
  const file = fc.record({
    path,
    binary: fc.boolean(),
    deleted: fc.boolean(),
    lines: fc.array(line, { maxLength: 20 }),
  });
  const files = fc.uniqueArray(file, { selector: (f) => f.path, maxLength: 12 });
  const globs = (pool: string[]) => fc.subarray(pool);
  const repoConfig = fc.record({
    ignore: globs(["*.md", "src/**", "!deno.lock", "lib/", "**/7*"]),
    include: globs(["**/*.ts", "src/", "*.go", "*.md", "*.json"]),
    max_files: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    max_diff_bytes: fc.option(fc.integer({ min: 1024, max: 4096 }), { nil: undefined }),
  }).map(({ ignore, include, ...rest }): RepoConfig =>
    config({ paths: { ignore, include }, ...rest })
  );
  const maxBytes = fc.option(fc.integer({ min: 0, max: 2500 }), { nil: undefined });

  fc.assert(
    fc.property(files, repoConfig, maxBytes, (input, cfg, limit) => {
      const sections = input.map((f) =>
        f.binary
          ? section(f.path, { binary: true })
          : f.deleted
          ? section(f.path, { deleted: true })
          : `diff --git a/${f.path} b/${f.path}\n@@ -0,0 +1,${f.lines.length} @@\n${
            f.lines.map((l) => `+${l}\n`).join("")
          }`
      );
      const diff = sections.join("");
      assert.deepEqual(splitDiff(diff).map((f) => f.path), input.map((f) => f.path));

      const result = selectDiff(diff, cfg, limit === undefined ? {} : { maxBytes: limit });
      const kept = new Set(result.files);
      // Kept paths and left-out paths partition the input, each in diff order.
      const all = input.map((f) => f.path);
      assert.deepEqual(result.files, all.filter((p) => kept.has(p)));
      assert.deepEqual(result.leftOut.map((o) => o.path), all.filter((p) => !kept.has(p)));
      // The kept diff is exactly the kept sections, in order.
      assert.equal(result.diff, sections.filter((_, i) => kept.has(all[i])).join(""));
      // Within the byte and file bounds.
      const bound = Math.min(cfg.max_diff_bytes ?? Infinity, limit ?? Infinity);
      assert.ok(bytes(result.diff) <= bound);
      assert.ok(result.files.length <= (cfg.max_files ?? Infinity));
      // Binary files are never kept.
      for (const f of input) if (f.binary) assert.ok(!kept.has(f.path));
    }),
    { numRuns: 300 },
  );
});

Deno.test("selectDiff property: path rules answer as picomatch's own matchers would", () => {
  // The reference: each `.gitignore`-like glob as picomatch patterns, matched by picomatch itself.
  const reference = (glob: string, nocase: boolean) => {
    const negate = glob.startsWith("!");
    let body = negate ? glob.slice(1) : glob;
    if (body.startsWith("./")) body = body.slice(2);
    const dirOnly = body.endsWith("/");
    if (dirOnly) body = body.replace(/\/+$/, "");
    body = body.includes("/") ? body.replace(/^\/+/, "") : `**/${body}`;
    const patterns = dirOnly ? [`${body}/**`] : [body, `${body}/**`];
    return { negate, match: picomatch(patterns, { dot: true, nocase, noextglob: true }) };
  };
  const last = (globs: ReturnType<typeof reference>[], path: string) => {
    for (let i = globs.length - 1; i >= 0; i--) if (globs[i].match(path)) return !globs[i].negate;
    return false;
  };
  const segment = fc.constantFrom(
    "src",
    "Dist",
    "vendor",
    "node_modules",
    ".hidden",
    "package-lock.json",
    "Cargo.LOCK",
    "x.min.js",
    "y.PNG",
    "z.pb.go",
    "a_pb2.py",
    "[id].ts",
    "a.generated.ts",
    "build",
    "docs",
    "README.md",
  );
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"));
  const pool = [
    "*.md",
    "!deno.lock",
    "src/",
    "/dist/**",
    "docs/*.md",
    "[id].ts",
    "src/[id].ts",
    "*.PNG",
    "!**/vendor/**",
    "!*.lock",
    "build",
  ];
  fc.assert(
    fc.property(
      fc.uniqueArray(path, { maxLength: 8 }),
      fc.subarray(pool),
      fc.subarray(pool.filter((g) => !g.startsWith("!"))),
      (paths, ignore, include) => {
        const result = selectDiff(
          paths.map((p) => section(p)).join(""),
          config({ paths: { ignore, include } }),
        );
        const ignored = [
          ...DEFAULT_IGNORE.map((g) => reference(g, true)),
          ...ignore.map((g) => reference(g, false)),
        ];
        const included = include.map((g) => reference(g, false));
        const expected = paths.map((p) =>
          last(ignored, p)
            ? "ignored"
            : included.length && !last(included, p)
            ? "not_included"
            : "kept"
        );
        const why = new Map(result.leftOut.map((o) => [o.path, o.why]));
        assert.deepEqual(paths.map((p) => why.get(p) ?? "kept"), expected);
      },
    ),
    { numRuns: 300 },
  );
});
