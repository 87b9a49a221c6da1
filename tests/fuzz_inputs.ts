/**
 * Input generators for `fuzz_test.ts`: mutated GitHub webhook deliveries, internal API bodies,
 * agent SSE streams and unified diffs. Large values are descriptors (`"a".repeat(65000)`) that
 * `JSON.stringify` expands, so counterexamples stay readable.
 *
 * @module
 */
import fc from "fast-check";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { pullRequestPayload } from "./harness.ts";

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).length;

// ---------------------------------------------------------------------------------------------
// Values that print short and expand when serialized

/** Text made of literal parts and repeats; JSON gives the full string, counterexamples a recipe. */
export class Text {
  constructor(readonly parts: ReadonlyArray<string | { unit: string; count: number }>) {}
  toString(): string {
    return this.parts.map((p) => typeof p === "string" ? p : p.unit.repeat(p.count)).join("");
  }
  toJSON(): string {
    return this.toString();
  }
  [fc.toStringMethod](): string {
    return this.parts.map((p) =>
      typeof p === "string" ? JSON.stringify(p) : `${JSON.stringify(p.unit)}.repeat(${p.count})`
    ).join(" + ");
  }
}

/** Nested arrays or objects `depth` levels deep (built only when serialized). */
export class Nest {
  constructor(readonly depth: number, readonly kind: "array" | "object") {}
  toJSON(): unknown {
    let value: unknown = 0;
    for (let i = 0; i < this.depth; i++) value = this.kind === "array" ? [value] : { a: value };
    return value;
  }
  [fc.toStringMethod](): string {
    return `<${this.kind}s nested ${this.depth} deep>`;
  }
}

const printable = (maxLength: number, minLength = 0) =>
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength,
    maxLength,
  });

/** A string of up to `maxBytes` UTF-8 bytes made of one repeated unit. */
export const hugeString = (minBytes = 1_000, maxBytes = 100_000): fc.Arbitrary<Text> =>
  fc.record({
    unit: fc.constantFrom("a", "é", "😀", "\u0000", "a/", "0", "\u202e"),
    bytes: fc.integer({ min: minBytes, max: maxBytes }),
  }).map(({ unit, bytes }) =>
    new Text([{ unit, count: Math.max(1, Math.floor(bytes / utf8Length(unit))) }])
  );

/** `owner/name` repository names up to 6,000 characters. */
export const longRepoName: fc.Arbitrary<Text> = fc.record({
  unit: fc.constantFrom("o", "é", "😀", "-"),
  owner: fc.integer({ min: 1, max: 3_000 }),
  name: fc.integer({ min: 1, max: 3_000 }),
}).map(({ unit, owner, name }) =>
  new Text([{ unit, count: owner }, "/", { unit: "r", count: name }])
);

const oddStrings = fc.constantFrom(
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "😀🚀",
  "👩‍👩‍👧‍👦",
  "\u202eevil",
  "\ud800",
  "\udfff x",
  "\u2028\u2029",
  "\r\n",
  "null",
  "0",
  "a/b",
  "/",
  "a//b",
  " a/b",
  "a/b ",
  "../..",
  "Organization",
  "aaaaaaa",
  "0123456789abcdef".repeat(4),
  "G".repeat(40),
);

const outOfRange = fc.constantFrom(
  0,
  -1,
  1.5,
  -0,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  NaN,
  Infinity,
);

const shaLike = fc.string({
  unit: fc.constantFrom(..."0123456789abcdefABCDEFg"),
  maxLength: 80,
});

/** Any value a field could be replaced with: wrong types, odd and huge strings, deep junk. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hugeString() },
  { weight: 3, arbitrary: longRepoName },
  { weight: 2, arbitrary: oddStrings },
  { weight: 2, arbitrary: outOfRange },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom([], {}, [{}], [[]]) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: shaLike },
  {
    weight: 1,
    arbitrary: fc.record({
      depth: fc.integer({ min: 1, max: 2_000 }),
      kind: fc.constantFrom("array" as const, "object" as const),
    }).map(({ depth, kind }) => new Nest(depth, kind)),
  },
);

/** Strings a text field could hold: huge, long `owner/name`, odd or any unicode. */
export const oddText: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: hugeString() },
  { weight: 2, arbitrary: longRepoName },
  { weight: 1, arbitrary: oddStrings },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
);

// ---------------------------------------------------------------------------------------------
// Mutations of JSON documents

/** One change to a document: delete a field, set it to junk, or wrap it in an array. */
export type Mutation =
  | { path: string[]; op: "delete" }
  | { path: string[]; op: "set"; value: unknown }
  | { path: string[]; op: "wrap" };

function isContainer(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Applies mutations to a deep copy of `doc`; missing or non-object parents are created. */
export function applyMutations(doc: unknown, mutations: readonly Mutation[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const m of mutations) {
    if (m.path.length === 0) {
      if (m.op === "delete") root = undefined;
      else if (m.op === "wrap") root = [root];
      else root = copy(m.value);
      continue;
    }
    if (!isPlain(root)) root = {};
    let parent = root as Record<string, unknown>;
    for (const key of m.path.slice(0, -1)) {
      if (!isPlain(parent[key])) define(parent, key, {});
      parent = parent[key] as Record<string, unknown>;
    }
    const last = m.path[m.path.length - 1];
    if (m.op === "delete") delete parent[last];
    else define(parent, last, m.op === "wrap" ? [parent[last]] : copy(m.value));
  }
  return root;
}

/** An object or array to walk into (`Text` and `Nest` values are replaced, never changed). */
function isPlain(value: unknown): value is Record<string, unknown> {
  return isContainer(value) && !(value instanceof Text) && !(value instanceof Nest);
}

/** A deep copy that keeps `Text` and `Nest` (generated values are never changed in place). */
function copy(value: unknown): unknown {
  if (value instanceof Text || value instanceof Nest || !isContainer(value)) return value;
  if (Array.isArray(value)) return value.map(copy);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
}

/** Own property even for `__proto__`, as `JSON.parse` would make it. */
function define(target: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function pathsOf(value: unknown, prefix: string[] = [], depth = 4, out = new Set<string>()) {
  if (!isContainer(value) || Array.isArray(value) || depth === 0) return out;
  for (const [key, child] of Object.entries(value)) {
    const path = [...prefix, key];
    out.add(JSON.stringify(path));
    pathsOf(child, path, depth - 1, out);
  }
  return out;
}

/** A mutation at one of `focus` (mostly) or `other` paths, or of the whole document (rarely). */
export function mutation(
  focus: readonly string[][],
  other: readonly string[][],
): fc.Arbitrary<Mutation> {
  const path = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...focus) },
    { weight: 4, arbitrary: fc.constantFrom(...other) },
    { weight: 1, arbitrary: fc.constant([] as string[]) },
  ).map((p) => [...p]);
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ path, op: fc.constant("delete" as const) }) },
    {
      weight: 7,
      arbitrary: fc.record({ path, op: fc.constant("set" as const), value: junkValue }),
    },
    { weight: 1, arbitrary: fc.record({ path, op: fc.constant("wrap" as const) }) },
  );
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries

type ExampleGroup = { name: string; examples: Record<string, unknown>[] };
const GROUPS = examples as unknown as ExampleGroup[];
const PULL_REQUEST_EXAMPLES = GROUPS.find((g) => g.name === "pull_request")!.examples;
/** Every example of every event, as `[event, payload]`. */
export const ALL_EXAMPLES: ReadonlyArray<readonly [string, Record<string, unknown>]> = GROUPS
  .flatMap((g) => g.examples.map((e) => [g.name, e] as const));

/** Paths a review depends on. */
const WEBHOOK_FOCUS: string[][] = [
  ["action"],
  ["number"],
  ["pull_request"],
  ["pull_request", "number"],
  ["pull_request", "state"],
  ["pull_request", "draft"],
  ["pull_request", "title"],
  ["pull_request", "head"],
  ["pull_request", "head", "sha"],
  ["pull_request", "base"],
  ["pull_request", "base", "sha"],
  ["repository"],
  ["repository", "full_name"],
  ["repository", "name"],
  ["repository", "owner"],
  ["repository", "owner", "id"],
  ["repository", "owner", "login"],
  ["repository", "owner", "type"],
  ["sender"],
  ["installation"],
];
const WEBHOOK_OTHER: string[][] = [
  ...new Set(PULL_REQUEST_EXAMPLES.flatMap((e) => [...pathsOf(e)])),
].sort().map((p) => JSON.parse(p));

const TRIGGERS = ["opened", "synchronize", "reopened", "ready_for_review"];
/** Actions with an example (`pullRequestPayload` starts from one). */
const OTHER_ACTIONS = [
  "closed",
  "labeled",
  "unlabeled",
  "assigned",
  "converted_to_draft",
  "locked",
];

/** Where a mutated payload starts: a real example as is, or one adjusted to a fresh head. */
export type PayloadBase =
  | { example: number }
  | {
    action: string;
    ownerId: number;
    ownerType: "Organization" | "User";
    number: number;
    draft: boolean;
    state: string;
  };

const payloadBase: fc.Arbitrary<PayloadBase> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({ example: fc.nat({ max: PULL_REQUEST_EXAMPLES.length - 1 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      action: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...TRIGGERS) },
        { weight: 1, arbitrary: fc.constantFrom(...OTHER_ACTIONS) },
      ),
      ownerId: fc.integer({ min: 1, max: 6 }),
      ownerType: fc.constantFrom("Organization" as const, "User" as const),
      number: fc.integer({ min: 1, max: 50 }),
      draft: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, fc.constant(true)),
      state: fc.oneof({ weight: 5, arbitrary: fc.constant("open") }, fc.constant("closed")),
    }),
  },
);

/** A random 40-character hex sha (each delivery gets its own head, so reviews are not deduped). */
export const freshSha = (): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

/** The payload a base stands for, with a fresh head sha. */
export function basePayload(base: PayloadBase): Record<string, unknown> {
  if ("example" in base) return structuredClone(PULL_REQUEST_EXAMPLES[base.example]);
  return pullRequestPayload({ ...base, headSha: freshSha() });
}

/** How a delivery is signed. */
export type Signing =
  | { kind: "valid" }
  | { kind: "none" }
  | { kind: "empty" }
  | { kind: "otherSecret"; secret: string }
  | { kind: "otherBody" }
  | { kind: "zeros" }
  | { kind: "sha1" }
  | { kind: "truncated"; keep: number }
  | { kind: "flipped"; at: number }
  | { kind: "header"; value: string };

/** A webhook delivery: headers and a body (a document, or raw text that may not be JSON). */
export interface Delivery {
  event: string | null;
  /** `null`: no header; `"fresh"`: a new UUID each time. */
  deliveryId: string | null;
  contentType: string | null;
  signing: Signing;
  body: { base: PayloadBase; mutations: Mutation[] } | { json: unknown } | { raw: string } | {
    truncatedExample: number;
    at: number;
  };
}

const eventName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...GROUPS.map((g) => g.name), "PULL_REQUEST", "") },
  { weight: 1, arbitrary: printable(40) },
);
const deliveryIdArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant("fresh") },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant("redelivered-1") },
  { weight: 1, arbitrary: printable(2_000, 1) },
);
const contentTypeArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      null,
      "application/x-www-form-urlencoded",
      "text/plain; charset=utf-8",
      "application/json; charset=latin1",
    ),
  },
);

/** Text fields of a pull_request payload. */
const WEBHOOK_TEXT: string[][] = [
  ["action"],
  ["pull_request", "state"],
  ["pull_request", "title"],
  ["pull_request", "head", "sha"],
  ["pull_request", "base", "sha"],
  ["pull_request", "updated_at"],
  ["repository", "full_name"],
  ["repository", "name"],
  ["repository", "owner", "login"],
  ["repository", "owner", "type"],
];

/** One text field set to an odd or huge string, everything else valid. */
const oneTextField: fc.Arbitrary<Mutation[]> = fc.record({
  path: fc.constantFrom(...WEBHOOK_TEXT).map((p) => [...p]),
  op: fc.constant("set" as const),
  value: oddText,
}).map((m) => [m]);

/** Signed `pull_request` deliveries built from real examples with 0–4 mutated fields. */
export const mutatedPullRequest: fc.Arbitrary<Delivery> = fc.record({
  event: fc.oneof({ weight: 12, arbitrary: fc.constant("pull_request") }, eventName, {
    weight: 1,
    arbitrary: fc.constant(null),
  }),
  deliveryId: deliveryIdArb,
  contentType: contentTypeArb,
  signing: fc.constant({ kind: "valid" } as Signing),
  body: fc.record({
    base: payloadBase,
    mutations: fc.oneof(
      { weight: 3, arbitrary: fc.array(mutation(WEBHOOK_FOCUS, WEBHOOK_OTHER), { maxLength: 4 }) },
      { weight: 1, arbitrary: oneTextField },
    ),
  }),
});

const invalidJson = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.constantFrom(
    "",
    " ",
    "{",
    "[",
    "nul",
    '{"action":"opened"',
    "\ufeff{}",
    '{"action":"opened"}garbage',
    "NaN",
    "{'action':'opened'}",
    '{"a":1,}',
    "payload=%7B%22action%22%3A%22opened%22%7D",
    "\u0000",
  ),
);

/** Signed deliveries of any event, any action and any JSON value, or of text that is not JSON. */
export const randomDelivery: fc.Arbitrary<Delivery> = fc.record({
  event: fc.oneof({ weight: 2, arbitrary: fc.constant("pull_request") }, eventName),
  deliveryId: deliveryIdArb,
  contentType: contentTypeArb,
  signing: fc.constant({ kind: "valid" } as Signing),
  body: fc.oneof(
    fc.record({ json: fc.jsonValue({ maxDepth: 4 }) }),
    fc.record({ json: fc.nat({ max: ALL_EXAMPLES.length - 1 }).map((i) => ALL_EXAMPLES[i][1]) }),
    fc.record({
      base: fc.record({ example: fc.nat({ max: PULL_REQUEST_EXAMPLES.length - 1 }) }),
      mutations: fc.tuple(
        fc.oneof(fc.constantFrom(...TRIGGERS, ...OTHER_ACTIONS), fc.string({ maxLength: 20 })),
      ).map(([action]): Mutation[] => [{ path: ["action"], op: "set", value: action }]),
    }),
    fc.record({ raw: invalidJson }),
    fc.record({
      truncatedExample: fc.nat({ max: PULL_REQUEST_EXAMPLES.length - 1 }),
      at: fc.nat({ max: 30_000 }),
    }),
  ),
});

const signingArb: fc.Arbitrary<Signing> = fc.oneof(
  fc.constant({ kind: "none" } as const),
  fc.constant({ kind: "empty" } as const),
  fc.record({ kind: fc.constant("otherSecret" as const), secret: printable(30) }),
  fc.constant({ kind: "otherBody" } as const),
  fc.constant({ kind: "zeros" } as const),
  fc.constant({ kind: "sha1" } as const),
  fc.record({ kind: fc.constant("truncated" as const), keep: fc.nat({ max: 70 }) }),
  fc.record({ kind: fc.constant("flipped" as const), at: fc.nat({ max: 63 }) }),
  fc.record({ kind: fc.constant("header" as const), value: printable(100) }),
);

/** Deliveries that would start a review, but unsigned or wrongly signed, with odd headers. */
export const badlySigned: fc.Arbitrary<Delivery> = fc.record({
  event: fc.oneof({ weight: 5, arbitrary: fc.constant("pull_request") }, {
    weight: 1,
    arbitrary: fc.constant(null),
  }),
  deliveryId: deliveryIdArb,
  contentType: contentTypeArb,
  signing: signingArb,
  body: fc.record({
    base: fc.record({
      action: fc.constantFrom(...TRIGGERS),
      ownerId: fc.integer({ min: 1, max: 6 }),
      ownerType: fc.constant("Organization" as const),
      number: fc.integer({ min: 1, max: 50 }),
      draft: fc.constant(false),
      state: fc.constant("open"),
    }),
    mutations: fc.constant([]),
  }),
});

/** The raw body of a delivery. */
export function deliveryBody(body: Delivery["body"]): string {
  if ("raw" in body) return body.raw;
  if ("truncatedExample" in body) {
    const text = JSON.stringify(PULL_REQUEST_EXAMPLES[body.truncatedExample]);
    return text.slice(0, body.at % text.length);
  }
  const doc = "json" in body ? body.json : applyMutations(basePayload(body.base), body.mutations);
  return JSON.stringify(doc) ?? "";
}

// ---------------------------------------------------------------------------------------------
// Internal API bodies

const API_FOCUS: string[][] = [
  ["reviewId"],
  ["authToken"],
  ["owner"],
  ["owner", "type"],
  ["owner", "id"],
  ["owner", "userId"],
  ["owner", "login"],
  ["sessionInput"],
  ["sessionInput", "githubRepo"],
  ["sessionInput", "pullNumber"],
  ["sessionInput", "prompt"],
  ["sessionInput", "model"],
];
const API_OTHER: string[][] = [
  "extra",
  "__proto__",
  "constructor",
  "toString",
  "diff",
  "files",
  "reviewId",
  "headSha",
  "",
].flatMap((k) => [["sessionInput", k], ["owner", k], [k]]);

/** Text fields of a `POST /review` body. */
const API_TEXT: string[][] = [
  ["reviewId"],
  ["authToken"],
  ["owner", "id"],
  ["owner", "login"],
  ["sessionInput", "githubRepo"],
  ["sessionInput", "prompt"],
  ["sessionInput", "model"],
  ["sessionInput", "extra"],
];

/** A `POST /review` request: a README-style body with mutations, or raw text; and its bearer. */
export interface ApiCase {
  body: {
    ownerType: "org" | "user";
    ownerId: string | number;
    pullNumber: number;
    prompt: string | undefined;
    mutations: Mutation[];
  } | { raw: string };
  auth: "valid" | "lowercase" | "none" | "wrong" | "basic" | "empty";
}

/** Bodies of `POST /review`, mostly authorized. */
export const apiCase: fc.Arbitrary<ApiCase> = fc.record({
  body: fc.oneof(
    {
      weight: 9,
      arbitrary: fc.record({
        ownerType: fc.constantFrom("org" as const, "user" as const),
        ownerId: fc.oneof(fc.constantFrom("1", "2", "3"), fc.integer({ min: 1, max: 6 })),
        pullNumber: fc.integer({ min: 1, max: 100 }),
        prompt: fc.option(fc.string({ unit: "grapheme", maxLength: 50 }), { nil: undefined }),
        mutations: fc.oneof(
          { weight: 1, arbitrary: fc.array(mutation(API_FOCUS, API_OTHER), { maxLength: 4 }) },
          {
            weight: 1,
            arbitrary: fc.record({
              path: fc.constantFrom(...API_TEXT).map((p) => [...p]),
              op: fc.constant("set" as const),
              value: oddText,
            }).map((m) => [m]),
          },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ raw: invalidJson }) },
  ),
  auth: fc.oneof(
    { weight: 12, arbitrary: fc.constant("valid" as const) },
    fc.constantFrom("lowercase" as const, "none" as const, "wrong" as const, "basic" as const),
    fc.constant("empty" as const),
  ),
});

/** The raw body of an API case; the base review id is fresh each time, so nothing is deduped. */
export function apiBody(body: ApiCase["body"]): string {
  if ("raw" in body) return body.raw;
  const doc = {
    reviewId: `fuzz-${crypto.randomUUID()}`,
    authToken: "token-for-the-agent",
    owner: { type: body.ownerType, id: body.ownerId, userId: "u-1" },
    sessionInput: {
      githubRepo: "octo-org/api",
      pullNumber: body.pullNumber,
      ...(body.prompt === undefined ? {} : { prompt: body.prompt }),
    },
  };
  return JSON.stringify(applyMutations(doc, body.mutations)) ?? "";
}

// ---------------------------------------------------------------------------------------------
// Agent SSE streams

/** A line terminator, as SSE allows all three. */
export type Newline = "\n" | "\r\n" | "\r";

/** One piece of an SSE stream. */
export type SseFrame =
  | { kind: "event"; name: string | null; data: string | Text; nl: Newline }
  | { kind: "line"; line: string; nl: Newline }
  | { kind: "blank"; nl: Newline }
  | { kind: "bytes"; bytes: number[] };

/** How the fake agent answers and streams, and the session's options. */
export interface SseCase {
  answer:
    | { kind: "sse"; contentType: string; sessionId: string | null }
    | { kind: "http"; status: number; contentType: string; body: string }
    | { kind: "noBody" }
    | { kind: "refused" }
    | { kind: "hangs" };
  bom: boolean;
  frames: SseFrame[];
  chunks: number[];
  ending: "close" | "error" | "hang";
  yieldEvery: number;
  idleTimeoutMs: number;
  totalTimeoutMs: number;
  maxEventBytes: number | undefined;
  maxFindings: number | undefined;
  onEventThrows: boolean;
  abortAfterMs: number | null;
}

const newline = fc.constantFrom<Newline>("\n", "\r\n", "\r");
const finding = fc.record({
  severity: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("critical", "warning", "info") },
    fc.constantFrom("fatal", "", "INFO"),
  ),
  file_path: fc.string({ unit: "grapheme", maxLength: 30 }),
  line_number: fc.oneof(fc.integer(), fc.constant(null), fc.double()),
  title: fc.string({ unit: "grapheme", maxLength: 30 }),
  description: fc.string({ unit: "grapheme", maxLength: 60 }),
  suggestion: fc.string({ maxLength: 20 }),
  agent_type: fc.string({ maxLength: 10 }),
}, { requiredKeys: ["severity", "file_path", "title", "description", "agent_type"] });

const eventData: fc.Arbitrary<string | Text> = fc.oneof(
  { weight: 3, arbitrary: finding.map((f) => JSON.stringify(f)) },
  fc.record({ message: fc.string({ unit: "grapheme" }) }).map((d) => JSON.stringify(d)),
  fc.record({ text: fc.string({ unit: "grapheme" }) }).map((d) => JSON.stringify(d)),
  fc.record({ message: fc.string(), retryable: fc.option(fc.boolean(), { nil: undefined }) })
    .map((d) => JSON.stringify(d)),
  fc.constant("{}"),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom("{not json", "", "null", "[]", '{"message":1}'),
  fc.record({ bytes: fc.integer({ min: 1_000, max: 400_000 }), unit: fc.constantFrom("x", "é") })
    .map(({ bytes, unit }) =>
      new Text(['{"text":"', { unit, count: Math.floor(bytes / utf8Length(unit)) }, '"}'])
    ),
);

const sseFrame: fc.Arbitrary<SseFrame> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("event" as const),
      name: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom("status", "finding", "summary", "error", "done") },
        { weight: 1, arbitrary: fc.constantFrom(null, "message", "", "Done", " done") },
        { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
      ),
      data: eventData,
      nl: newline,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("line" as const),
      line: fc.oneof(
        fc.constantFrom(
          ": heartbeat",
          ":",
          "id: 7",
          "id: a\u0000b",
          "retry: 10",
          "retry: x",
          "data",
        ),
        fc.constantFrom("event: done", "data: {}", "event:done", "data:{}", "bogus: 1"),
        fc.string({ unit: "binary", maxLength: 60 }),
      ),
      nl: newline,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("blank" as const), nl: newline }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("bytes" as const),
      bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
    }),
  },
);

/** Agent answers: mostly SSE streams of random frames split at random points. */
export const sseCase: fc.Arbitrary<SseCase> = fc.record({
  answer: fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant("sse" as const),
        contentType: fc.oneof(
          { weight: 6, arbitrary: fc.constant("text/event-stream") },
          fc.constantFrom("Text/Event-Stream; charset=utf-8", "application/json", "text/plain", ""),
        ),
        sessionId: fc.option(printable(20), { nil: null }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("http" as const),
        status: fc.constantFrom(200, 201, 301, 400, 401, 404, 409, 429, 500, 502, 503),
        contentType: fc.constantFrom("text/plain", "application/json", "text/event-stream"),
        body: fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), fc.constant("")),
      }),
    },
    fc.constantFrom(
      { kind: "noBody" as const },
      { kind: "refused" as const },
      { kind: "hangs" as const },
    ),
  ),
  bom: fc.boolean(),
  frames: fc.array(sseFrame, { maxLength: 12 }),
  chunks: fc.oneof(
    fc.constant<number[]>([1]),
    fc.array(fc.integer({ min: 1, max: 8_192 }), { minLength: 1, maxLength: 6 }),
  ),
  ending: fc.oneof(
    { weight: 6, arbitrary: fc.constant("close" as const) },
    fc.constant("error" as const),
    fc.constant("hang" as const),
  ),
  yieldEvery: fc.constantFrom(1, 8, 64),
  idleTimeoutMs: fc.integer({ min: 20, max: 80 }),
  totalTimeoutMs: fc.integer({ min: 50, max: 200 }),
  maxEventBytes: fc.option(fc.integer({ min: 0, max: 4_096 }), { nil: undefined }),
  maxFindings: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  onEventThrows: fc.boolean(),
  abortAfterMs: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null, freq: 8 }),
});

/** The bytes of a case's stream. */
export function sseBytes(c: SseCase): Uint8Array {
  const parts: Uint8Array[] = c.bom ? [new Uint8Array([0xef, 0xbb, 0xbf])] : [];
  for (const f of c.frames) {
    if (f.kind === "bytes") {
      parts.push(new Uint8Array(f.bytes));
      continue;
    }
    let text: string;
    if (f.kind === "blank") text = f.nl;
    else if (f.kind === "line") text = f.line + f.nl;
    else {
      const data = String(f.data).split(/\r\n|\r|\n/).map((d) => `data: ${d}${f.nl}`).join("");
      text = `${f.name === null ? "" : `event: ${f.name}${f.nl}`}${data}${f.nl}`;
    }
    parts.push(encoder.encode(text));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Unified diffs

/** Git's `quote_c_style` with `core.quotePath` on: control bytes, `"`, `\` and non-ASCII. */
export function gitQuote(path: string): string {
  const named: Record<number, string> = {
    7: "a",
    8: "b",
    9: "t",
    10: "n",
    11: "v",
    12: "f",
    13: "r",
  };
  let out = "";
  let quoted = false;
  for (const b of encoder.encode(path)) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (named[b]) out += `\\${named[b]}`;
    else if (b < 0x20 || b >= 0x7f) out += `\\${b.toString(8).padStart(3, "0")}`;
    else {
      out += String.fromCharCode(b);
      continue;
    }
    quoted = true;
  }
  return quoted ? `"${out}"` : path;
}

const segment = fc.string({
  unit: fc.constantFrom(..."abcxyz019._- "),
  minLength: 1,
  maxLength: 8,
});
/** Paths git prints without quotes (spaces included, so `" b/"` can occur inside one). */
export const plainPath: fc.Arbitrary<string> = fc.array(segment, { minLength: 1, maxLength: 3 })
  .map((s) => s.join("/"));
/** Paths of any characters but NUL; git quotes most of them. */
export const anyPath: fc.Arbitrary<string> = fc.string({
  unit: "binary",
  minLength: 1,
  maxLength: 12,
}).filter((p) => !p.includes("\u0000"));

/** One file of a generated diff: its old and new paths. */
export interface DiffFile {
  from: string;
  to: string;
}

/** Files of a diff: unchanged or renamed paths, plain or needing quotes. */
export const diffFiles: fc.Arbitrary<DiffFile[]> = fc.array(
  fc.oneof(
    plainPath.map((p) => ({ from: p, to: p })),
    anyPath.map((p) => ({ from: p, to: p })),
    fc.record({ from: plainPath.filter((p) => !p.includes(" b/")), to: plainPath }),
    fc.record({ from: anyPath, to: anyPath }),
  ),
  { maxLength: 6 },
);

/** A unified diff of those files, with `\n` or `\r\n` line ends. */
export function diffText(files: readonly DiffFile[], crlf: boolean): string {
  const lines = files.flatMap((f) => [
    `diff --git ${gitQuote(`a/${f.from}`)} ${gitQuote(`b/${f.to}`)}`,
    "index 83db48f..bf269f4 100644",
    `--- ${gitQuote(`a/${f.from}`)}`,
    `+++ ${gitQuote(`b/${f.to}`)}`,
    "@@ -1,2 +1,2 @@",
    " context",
    "-diff --git a/old b/old",
    "+new line",
  ]);
  return lines.map((l) => l + (crlf ? "\r\n" : "\n")).join("");
}

/** An edit of a diff's text: insert a piece, delete or duplicate a range. */
export type DiffEdit =
  | { at: number; insert: string }
  | { at: number; remove: number }
  | { at: number; repeat: number; times: number };

const diffPiece = fc.oneof(
  fc.constantFrom(
    "diff --git ",
    "a/",
    " b/",
    '"',
    "\\",
    "\\n",
    "\\303\\251",
    "\\3",
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    " ",
    "é",
    "😀",
    "\ud800",
  ),
  fc.string({ unit: "binary", maxLength: 10 }),
);

/** Random edits of a text. */
export const diffEdits: fc.Arbitrary<DiffEdit[]> = fc.array(
  fc.oneof(
    fc.record({ at: fc.nat(), insert: diffPiece }),
    fc.record({ at: fc.nat(), remove: fc.nat({ max: 40 }) }),
    fc.record({
      at: fc.nat(),
      repeat: fc.nat({ max: 40 }),
      times: fc.integer({ min: 2, max: 50 }),
    }),
  ),
  { maxLength: 8 },
);

/** Applies edits to a text (positions wrap around its length). */
export function applyEdits(text: string, edits: readonly DiffEdit[]): string {
  let out = text;
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + 1);
    if ("insert" in e) out = out.slice(0, at) + e.insert + out.slice(at);
    else if ("remove" in e) out = out.slice(0, at) + out.slice(at + e.remove);
    else out = out.slice(0, at) + out.slice(at, at + e.repeat).repeat(e.times) + out.slice(at);
  }
  return out;
}

/** Strings made mostly of the pieces diffs are parsed by. */
export const diffishString: fc.Arbitrary<string> = fc.array(diffPiece, { maxLength: 60 })
  .map((p) => p.join(""));
