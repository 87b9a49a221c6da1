/**
 * The repository's own settings, read from `.github/ai-review.yml`: whether and when to review,
 * which files of a diff the agent sees, extra instructions, and severity thresholds. Parsing never
 * throws: a bad file yields the default settings and a list of human-readable problems.
 *
 * @module
 */
// @ts-types="@types/picomatch"
import picomatch from "picomatch";
import { parseDocument } from "yaml";
import { z } from "zod";
import { type Severity, SeveritySchema } from "../kv/records.ts";
import { splitDiff } from "./diff.ts";
import { severityRank } from "./findings.ts";

/**
 * Where the settings live in the repository (on the PR's base branch).
 *
 * @example
 * ```ts
 * await octokit.repos.getContent({ owner, repo, path: REPO_CONFIG_PATH });
 * ```
 */
export const REPO_CONFIG_PATH = ".github/ai-review.yml";

/** Files over this many UTF-8 bytes are refused without being parsed. */
const MAX_FILE_BYTES = 64 * 1024;
/** Aliases expanded while converting YAML to JS (bounds "billion laughs" files). */
const MAX_ALIAS_COUNT = 100;
/** At most this many problems are listed (YAML errors cascade: fewer); the rest are counted. */
const MAX_PROBLEMS = 20;
const MAX_YAML_PROBLEMS = 5;
const MAX_GLOBS = 500;
const MAX_GLOB_CHARS = 1000;
const MAX_DIFF_BYTES = 16 * 1024 * 1024;

const SEVERITY_ALIASES: Record<string, Severity> = { warning: "medium" };

/** A severity, case-insensitive, `warning` meaning `medium` (the agent's scale). */
const SeverityField = z.preprocess(
  (value) => {
    if (typeof value !== "string") return value;
    const word = value.trim().toLowerCase();
    return SEVERITY_ALIASES[word] ?? word;
  },
  z.enum(SeveritySchema.options, {
    error: `expected one of ${SeveritySchema.options.join(", ")}`,
  }),
);

/** Wildcards per segment: picomatch's regexes backtrack exponentially in their number. */
const MAX_STARS_PER_SEGMENT = 3;
/** `**` segments per glob (one more is added to anchor a glob without a slash). */
const MAX_GLOBSTARS = 2;

const GlobList = z.preprocess(
  (value) => typeof value === "string" ? [value] : value, // `ignore: "*.md"` means one glob
  z.array(
    z.string({ error: "expected a string" })
      .min(1, { error: "expected a non-empty glob" })
      .max(MAX_GLOB_CHARS, { error: `expected a glob of at most ${MAX_GLOB_CHARS} characters` })
      .refine((glob) => glob === "" || isValidGlob(glob), { error: "expected a valid glob" })
      .refine((glob) => isSimpleGlob(glob), {
        error: `expected a simpler glob: at most ${MAX_STARS_PER_SEGMENT} \`*\` per path ` +
          `segment, ${MAX_GLOBSTARS} \`**\`, no extglobs`,
      }),
    { error: "expected a list of globs" },
  ).max(MAX_GLOBS, { error: `expected at most ${MAX_GLOBS} globs` }).default(() => []),
);

const flag = (fallback: boolean) =>
  z.boolean({ error: "expected true or false" }).default(fallback);

const int = (min: number, max: number) =>
  z.number({ error: `expected an integer from ${min} to ${max}` })
    .int({ error: `expected an integer from ${min} to ${max}` })
    .min(min, { error: `expected an integer from ${min} to ${max}` })
    .max(max, { error: `expected an integer from ${min} to ${max}` });

/**
 * The schema of `.github/ai-review.yml` after YAML parsing. Strict: unknown keys are errors. A
 * key with an empty value (`model:`) counts as absent.
 *
 * @example
 * ```ts
 * RepoConfigSchema.parse({ drafts: true }).min_severity; // "info"
 * RepoConfigSchema.safeParse({ max_file: 3 }).success; // false
 * ```
 */
export const RepoConfigSchema = z.preprocess(
  withoutNulls,
  z.strictObject({
    enabled: flag(true),
    drafts: flag(false),
    auto_review: flag(true),
    paths: z.preprocess(
      withoutNulls,
      z.strictObject({ ignore: GlobList, include: GlobList }, {
        error: "expected a mapping with `ignore` and/or `include`",
      }),
    ).default(() => ({ ignore: [], include: [] })),
    instructions: z.string({ error: "expected a string" })
      .max(8000, { error: "expected at most 8000 characters" }).optional(),
    model: z.string({ error: "expected a string" })
      .min(1, { error: "expected a non-empty string" })
      .max(200, { error: "expected at most 200 characters" }).optional(),
    min_severity: SeverityField.default("info"),
    fail_on: SeverityField.optional(),
    max_files: int(1, 3000).optional(),
    max_diff_bytes: int(1024, MAX_DIFF_BYTES).optional(),
  }, { error: "expected a mapping of settings at the top level" }),
);

/**
 * The repository's review settings. `paths.ignore` adds to {@link DEFAULT_IGNORE}; an empty
 * `paths.include` means every file. `fail_on` absent means `min_severity`.
 *
 * @example
 * ```ts
 * const config: RepoConfig = { ...DEFAULT_REPO_CONFIG, min_severity: "medium" };
 * ```
 */
export type RepoConfig = z.infer<typeof RepoConfigSchema>;

/**
 * Paths never worth a review, in `.gitignore`-like syntax (a glob without a slash matches the
 * file name at any depth). Matched case-insensitively.
 *
 * @example
 * ```ts
 * DEFAULT_IGNORE.includes("package-lock.json"); // true
 * ```
 */
export const DEFAULT_IGNORE: readonly string[] = Object.freeze([
  // Lock files.
  "package-lock.json",
  "npm-shrinkwrap.json",
  "yarn.lock",
  "pnpm-lock.yaml",
  "bun.lock",
  "bun.lockb",
  "deno.lock",
  "Cargo.lock",
  "poetry.lock",
  "Pipfile.lock",
  "uv.lock",
  "Gemfile.lock",
  "composer.lock",
  "go.sum",
  "mix.lock",
  "pubspec.lock",
  "Podfile.lock",
  "packages.lock.json",
  "gradle.lockfile",
  "*.lock",
  // Minified and source maps.
  "*.min.js",
  "*.min.mjs",
  "*.min.css",
  "*.map",
  // Vendored.
  "**/vendor/**",
  "**/node_modules/**",
  "**/third_party/**",
  "**/bower_components/**",
  // Generated.
  "**/dist/**",
  "**/build/**",
  "**/__generated__/**",
  "*.generated.*",
  "*.pb.go",
  "*_pb2.py",
  "*_pb2.pyi",
  "*_pb2_grpc.py",
  // Binary-ish: images, fonts, archives, documents, media, compiled code, databases.
  ...[
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "ico",
    "webp",
    "avif",
    "tif",
    "tiff",
    "psd",
    "heic",
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    "zip",
    "tar",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "7z",
    "rar",
    "jar",
    "war",
    "pdf",
    "mp3",
    "mp4",
    "wav",
    "ogg",
    "flac",
    "mov",
    "avi",
    "webm",
    "wasm",
    "exe",
    "dll",
    "so",
    "dylib",
    "a",
    "o",
    "class",
    "pyc",
    "bin",
    "sqlite",
    "sqlite3",
  ].map((ext) => `*.${ext}`),
]);

/**
 * The settings used when the file is missing or invalid.
 *
 * @example
 * ```ts
 * DEFAULT_REPO_CONFIG.auto_review; // true
 * ```
 */
export const DEFAULT_REPO_CONFIG: RepoConfig = deepFreeze({
  enabled: true,
  drafts: false,
  auto_review: true,
  paths: { ignore: [], include: [] },
  min_severity: "info",
});

/**
 * Parses `.github/ai-review.yml`. `null` (no file) gives the defaults and no problems. A file over
 * 64 KiB, invalid YAML, or any invalid or unknown field gives the DEFAULT settings (none of the
 * file is used) and one problem per bad field. `warning` is accepted as `medium`. Never throws.
 *
 * @example
 * ```ts
 * parseRepoConfig("min_severity: warning\n").config.min_severity; // "medium"
 * parseRepoConfig("max_file: 3\n").problems; // ['unknown field "max_file" (did you mean "max_files"?)']
 * ```
 */
export function parseRepoConfig(text: string | null): { config: RepoConfig; problems: string[] } {
  const defaults = () => structuredClone(DEFAULT_REPO_CONFIG) as RepoConfig;
  try {
    if (text === null || text === undefined) return { config: defaults(), problems: [] };
    if (typeof text !== "string") {
      return { config: defaults(), problems: ["the file is not text"] };
    }
    const bytes = text.length > MAX_FILE_BYTES ? Infinity : new TextEncoder().encode(text).length;
    if (bytes > MAX_FILE_BYTES) {
      return {
        config: defaults(),
        problems: [`the file is larger than ${MAX_FILE_BYTES / 1024} KiB; it was not read`],
      };
    }
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const problems = doc.errors.map((error) => {
        const { line, col } = lineAndColumn(text, error.pos?.[0] ?? 0);
        return `invalid YAML at line ${line}, column ${col}: ${firstLine(error.message)}`;
      });
      return { config: defaults(), problems: capProblems(problems, MAX_YAML_PROBLEMS) };
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      const why = error instanceof ReferenceError && /alias/i.test(error.message)
        ? "too many aliases"
        : firstLine(error instanceof Error ? error.message : String(error));
      return { config: defaults(), problems: [`invalid YAML: ${why}`] };
    }
    if (data === null || data === undefined) return { config: defaults(), problems: [] };
    const result = RepoConfigSchema.safeParse(data);
    if (result.success) return { config: result.data, problems: [] };
    return {
      config: defaults(),
      problems: capProblems(result.error.issues.flatMap((issue) => describeIssue(issue, data))),
    };
  } catch (error) {
    // Deep nesting can overflow the stack; any other surprise is reported, not thrown.
    const why = error instanceof Error ? error.message : String(error);
    return { config: defaults(), problems: [`the file could not be read: ${firstLine(why)}`] };
  }
}

/**
 * Why a file of the diff was not given to the agent.
 *
 * @example
 * ```ts
 * const out: LeftOut = { path: "package-lock.json", why: "ignored" };
 * ```
 */
export interface LeftOut {
  path: string;
  why: "ignored" | "not_included" | "binary" | "max_files" | "max_diff_bytes";
}

/**
 * Chooses the files of a unified diff the agent reviews. File by file, in diff order: a path
 * ignored by {@link DEFAULT_IGNORE} plus `paths.ignore` (`.gitignore`-like; the last matching
 * glob wins, so `!deno.lock` re-includes), then a path matching no `paths.include` glob, then a
 * binary change is left out. Of the rest, the first `max_files` are kept, and the kept sections
 * are cut on a file boundary at `max_diff_bytes` (or `options.maxBytes` when smaller): from the
 * first section that does not fit, nothing more is kept. The returned diff is exactly the kept
 * sections concatenated; `leftOut` lists every other file once, in diff order.
 *
 * @example
 * ```ts
 * const diff = "diff --git a/a.ts b/a.ts\n+x\ndiff --git a/yarn.lock b/yarn.lock\n+y\n";
 * selectDiff(diff, DEFAULT_REPO_CONFIG);
 * // { diff: "diff --git a/a.ts b/a.ts\n+x\n", files: ["a.ts"],
 * //   leftOut: [{ path: "yarn.lock", why: "ignored" }] }
 * ```
 */
export function selectDiff(
  diff: string,
  config: RepoConfig,
  options: { maxBytes?: number } = {},
): { diff: string; files: string[]; leftOut: LeftOut[] } {
  const ignore = [
    ...defaultIgnoreGlobs(),
    ...config.paths.ignore.map((glob) => cachedGlob(glob)),
  ];
  const include = config.paths.include.map((glob) => cachedGlob(glob));
  const maxFiles = config.max_files ?? Infinity;
  const maxBytes = Math.min(config.max_diff_bytes ?? Infinity, options.maxBytes ?? Infinity);
  const encoder = new TextEncoder();

  const kept: string[] = [];
  const files: string[] = [];
  const leftOut: LeftOut[] = [];
  let bytes = 0;
  let cut = false;
  for (const file of splitDiff(diff)) {
    let why: LeftOut["why"] | undefined;
    if (lastMatch(ignore, file.path)) why = "ignored";
    else if (include.length > 0 && !lastMatch(include, file.path)) why = "not_included";
    else if (file.binary) why = "binary";
    else if (files.length >= maxFiles) why = "max_files";
    else if (cut || bytes + encoder.encode(file.text).length > maxBytes) {
      why = "max_diff_bytes";
      cut = true;
    }
    if (why) {
      leftOut.push({ path: file.path, why });
      continue;
    }
    bytes += encoder.encode(file.text).length;
    kept.push(file.text);
    files.push(file.path);
  }
  return { diff: kept.join(""), files, leftOut };
}

/**
 * Whether `severity` is at or above `threshold` (critical is the most severe).
 *
 * @example
 * ```ts
 * atLeast("high", "medium"); // true
 * atLeast("low", "medium"); // false
 * ```
 */
export function atLeast(severity: Severity, threshold: Severity): boolean {
  return severityRank(severity) <= severityRank(threshold);
}

const REASONS: Record<LeftOut["why"], [one: string, many: string]> = {
  ignored: ["file ignored by path rules", "files ignored by path rules"],
  not_included: ["file outside `paths.include`", "files outside `paths.include`"],
  binary: ["binary file", "binary files"],
  max_files: ["file over the `max_files` limit", "files over the `max_files` limit"],
  max_diff_bytes: ["file past the diff size limit", "files past the diff size limit"],
};
const NAMED_PATHS = 3;
const MAX_PATH_CHARS = 60;

/**
 * One line per reason files were left out, for the PR comment: the count and the first few
 * paths (each shortened), at most about 300 characters.
 *
 * @example
 * ```ts
 * describeLeftOut([{ path: "package-lock.json", why: "ignored" }, { path: "a.png", why: "binary" }]);
 * // ["1 file ignored by path rules (package-lock.json)", "1 binary file (a.png)"]
 * ```
 */
export function describeLeftOut(leftOut: LeftOut[]): string[] {
  const lines: string[] = [];
  for (const why of Object.keys(REASONS) as LeftOut["why"][]) {
    const paths = leftOut.filter((out) => out.why === why).map((out) => out.path);
    if (paths.length === 0) continue;
    const named = paths.slice(0, NAMED_PATHS).map(shortPath);
    if (paths.length > NAMED_PATHS) named.push("…");
    const [one, many] = REASONS[why];
    lines.push(`${paths.length} ${paths.length === 1 ? one : many} (${named.join(", ")})`);
  }
  return lines;
}

interface Glob {
  negate: boolean;
  match: (path: string) => boolean;
}

/**
 * A `.gitignore`-like glob as picomatch patterns: `!` negates; a glob without a slash (or with only
 * a trailing one) matches at any depth; a leading slash or a slash in the middle anchors it at the
 * root; a glob matching a directory matches everything under it; a trailing slash matches
 * directories only.
 */
function globPatterns(glob: string): { negate: boolean; patterns: string[] } {
  const negate = glob.startsWith("!");
  let body = negate ? glob.slice(1) : glob;
  if (body.startsWith("./")) body = body.slice(2);
  const dirOnly = body.endsWith("/");
  if (dirOnly) body = body.replace(/\/+$/, "");
  const anchored = body.includes("/");
  body = anchored ? body.replace(/^\/+/, "") : `**/${body}`;
  return { negate, patterns: dirOnly ? [`${body}/**`] : [body, `${body}/**`] };
}

function compileGlob(glob: string, nocase: boolean): Glob {
  const { negate, patterns } = globPatterns(glob);
  return { negate, match: matcherOf(patterns, nocase) };
}

/**
 * Whether a path matches any of `patterns`, as `picomatch(patterns, options)` answers (a path
 * equal to a pattern, or matching its regular expression), with one regular expression for all:
 * picomatch's own matcher builds result objects on every call, once per pattern.
 */
function matcherOf(patterns: string[], nocase: boolean): (path: string) => boolean {
  const options = { dot: true, nocase, noextglob: true };
  const literal = new Set(patterns);
  const regexes = patterns.map((p) => picomatch.makeRe(p, options));
  return (path) => path !== "" && (literal.has(path) || regexes.some((r) => r.test(path)));
}

/** {@link DEFAULT_IGNORE} as one glob (none negates, so any match ignores), compiled on first use. */
let defaultGlobs: Glob[] | undefined;

function defaultIgnoreGlobs(): Glob[] {
  return defaultGlobs ??= [{
    negate: false,
    match: matcherOf(DEFAULT_IGNORE.flatMap((glob) => globPatterns(glob).patterns), true),
  }];
}

/** Repositories' globs (case-sensitive) compiled so far; the oldest go first beyond the bound. */
const compiledGlobs = new Map<string, Glob>();
const MAX_COMPILED_GLOBS = 2_000;

/**
 * A repository glob, compiled once: compiling costs far more than matching, and a repository's
 * configuration is the same for review after review. A compiled glob holds no state, so sharing
 * it is safe.
 */
function cachedGlob(glob: string): Glob {
  let compiled = compiledGlobs.get(glob);
  if (!compiled) {
    compiled = compileGlob(glob, false);
    if (compiledGlobs.size >= MAX_COMPILED_GLOBS) {
      compiledGlobs.delete(compiledGlobs.keys().next().value!);
    }
    compiledGlobs.set(glob, compiled);
  }
  return compiled;
}

function lastMatch(globs: Glob[], path: string): boolean {
  for (let i = globs.length - 1; i >= 0; i--) {
    if (globs[i].match(path)) return !globs[i].negate;
  }
  return false;
}

/**
 * Whether matching `glob` stays cheap on any path: `*a*a*a*a*b` on a long name takes seconds, and
 * a repository's configuration must never stall the service for every other owner.
 */
function isSimpleGlob(glob: string): boolean {
  const body = glob.replace(/^!/, "");
  if (/[@!+*?]\(/.test(body)) return false; // extglobs: @(…), !(…), +(…), *(…), ?(…)
  const segments = body.split("/");
  if (segments.filter((s) => s === "**").length > MAX_GLOBSTARS) return false;
  return segments.every((s) =>
    s === "**" || (s.match(/\*+/g) ?? []).length <= MAX_STARS_PER_SEGMENT
  );
}

function isValidGlob(glob: string): boolean {
  try {
    const body = glob.replace(/^!/, "").replace(/^\.\//, "").replace(/\/+$/, "").replace(
      /^\/+/,
      "",
    );
    if (body === "") return false;
    compileGlob(glob, false).match("x");
    return true;
  } catch {
    return false;
  }
}

/** Drops `key: null` entries (a key with an empty value in YAML) from a plain object. */
function withoutNulls(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

const TOP_LEVEL_KEYS = [
  "enabled",
  "drafts",
  "auto_review",
  "paths",
  "instructions",
  "model",
  "min_severity",
  "fail_on",
  "max_files",
  "max_diff_bytes",
];

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string[] {
  const where = formatPath(issue.path);
  const prefix = where ? `${where}: ` : "";
  if (issue.code === "unrecognized_keys") {
    const known = issue.path.length === 0 ? TOP_LEVEL_KEYS : ["ignore", "include"];
    return issue.keys.map((key) => {
      const near = (issue.path.length > 0 && /^exclude/i.test(key) ? "ignore" : undefined) ??
        known.find((k) => editDistance(k, key) <= 2);
      const hint = near ? ` (did you mean "${near}"?)` : "";
      return `${prefix}unknown field ${JSON.stringify(shorten(key, 60))}${hint}`;
    });
  }
  return [`${prefix}${issue.message} (got ${describeValue(valueAt(data, issue.path))})`];
}

function formatPath(path: PropertyKey[]): string {
  return path.map((key, i) =>
    typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`
  ).join("");
}

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === "string" && value.length > 40) return `${value.length} characters`;
  if (typeof value === "object" && value !== null) return "a mapping";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (value === undefined) return "nothing";
  return shorten(JSON.stringify(value) ?? String(value), 60);
}

function capProblems(problems: string[], max = MAX_PROBLEMS): string[] {
  if (problems.length <= max) return problems;
  return [...problems.slice(0, max), `… and ${problems.length - max} more problems`];
}

function lineAndColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split("\n").length;
  return { line, col: offset - (before.lastIndexOf("\n") + 1) + 1 };
}

function firstLine(text: string): string {
  return shorten(text.split("\n")[0].replace(/:$/, ""), 200);
}

function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

/** A long path keeps its end (the file name): `…/deep/dir/name.ts`. */
function shortPath(path: string): string {
  const chars = [...path];
  return chars.length <= MAX_PATH_CHARS ? path : `…${chars.slice(-(MAX_PATH_CHARS - 1)).join("")}`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || b.length > 100) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
