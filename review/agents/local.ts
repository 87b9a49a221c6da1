/**
 * The built-in reviewer (`AGENT_KIND=local`): a table of small line rules run in-process over the
 * lines a diff ADDS, so a review needs no model, no network and no keys, and costs milliseconds.
 * Removed and context lines are never looked at: a review comments on what the change brings in.
 *
 * The rules are deliberately conservative heuristics on one line at a time. They miss what spans
 * lines (a call whose argument is on the next line, SQL assembled over several statements) rather
 * than guess, and each rule says in its comment what it leaves out to avoid false positives.
 *
 * @module
 */
import type { AgentFinding } from "../agent_events.ts";
import { addedLines, splitDiff } from "../diff.ts";
import type { AgentContext, AgentRequest, ReviewAgent } from "./agent.ts";

/** A finding's severity, as agents report it. */
type Severity = AgentFinding["severity"];

/**
 * The rules the local reviewer reports; a line gets at most one finding per rule (the first
 * matching entry of {@link LINE_RULES} wins, so a token that several secret patterns match is
 * reported once).
 */
export type LocalRuleName =
  | "code-execution"
  | "secret"
  | "sql-injection"
  | "debugging"
  | "todo"
  | "large-file";

/**
 * What kind of file a path is, which decides the rules that apply: `js` (JavaScript, TypeScript
 * and their component formats), `python`, other `code`, `data` (config and data formats, where
 * only secrets and comments are looked at) and `markup` (prose and markup, same).
 */
export type FileLanguage = "js" | "python" | "code" | "data" | "markup";

/**
 * The file a line belongs to, as rules see it.
 *
 * @example
 * ```ts
 * const file: LocalFile = { path: "src/app.ts", language: "js", script: false };
 * ```
 */
export interface LocalFile {
  path: string;
  language: FileLanguage;
  /** A test, script, benchmark or example, where printing to the console is the point. */
  script: boolean;
}

/**
 * What a rule says about one line.
 *
 * @example
 * ```ts
 * const hit: RuleHit = { title: "eval()", description: "…", suggestion: "Use JSON.parse." };
 * ```
 */
export interface RuleHit {
  title: string;
  description: string;
  suggestion: string;
}

/**
 * One entry of the rules table: a named check of one added line.
 *
 * @example
 * ```ts
 * const rule: LineRule = {
 *   id: "js-alert",
 *   rule: "debugging",
 *   severity: "info",
 *   languages: ["js"],
 *   scope: "code",
 *   check: (text) =>
 *     /\balert\(/.test(text)
 *       ? { title: "alert() added", description: "…", suggestion: "Remove it." }
 *       : undefined,
 * };
 * ```
 */
export interface LineRule {
  /** Stable, unique name, quoted in each finding's description. */
  id: string;
  rule: LocalRuleName;
  severity: Severity;
  /** The kinds of file the entry applies to. */
  languages: readonly FileLanguage[];
  /**
   * `code`: not tried on lines that are only a comment (prose about `eval(` is not a call);
   * `any`: tried on every added line (a secret in a comment is still committed).
   */
  scope: "code" | "any";
  /** Not tried in tests, scripts, benchmarks and examples. */
  skipInScripts?: boolean;
  /** The line's text (at most {@link MAX_LINE_CHARS} characters) → a hit, or `undefined`. */
  check: (text: string, file: LocalFile) => RuleHit | undefined;
}

/** Characters of one line the rules look at: a minified 5 MB line costs no more than this. */
export const MAX_LINE_CHARS = 10_000;

/**
 * Options of {@link createLocalAgent}.
 *
 * @example
 * ```ts
 * const options: LocalAgentOptions = { maxAddedFileLines: 2_000, maxFindings: 50 };
 * ```
 */
export interface LocalAgentOptions {
  /** A file adding more lines than this gets one `large-file` finding; default 1000. */
  maxAddedFileLines?: number;
  /** Findings beyond this are dropped (the summary says how many); default 200. */
  maxFindings?: number;
}

// --- Helpers shared by the rules -----------------------------------------------------------

/** One string literal (double, single or backtick quoted), escapes included. */
const STRING = String.raw`(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\`(?:[^\`\\$]|\\.|\$(?!\{))*\`)`;
/**
 * A call's first argument is a plain literal (Python `r`/`b`/`u` prefixes allowed; not `f`).
 * Sticky: tried at the position after the call's `(`.
 */
const FIRST_ARG_LITERAL = new RegExp(String.raw`\s*(?:[rRbBuU]{1,2})?${STRING}\s*(?:[,)]|$)`, "y");
/** Every argument of a call is a plain literal (or there is none). Sticky, like the above. */
const ALL_ARGS_LITERAL = new RegExp(
  String.raw`\s*(?:${STRING}\s*(?:,\s*${STRING}\s*)*,?\s*)?\)`,
  "y",
);
/**
 * A line that is a method definition such as `exec(command: string) {`: its name is not a call.
 * Nested parentheses in the arguments (`exec(cmd, (err) => {`) mean a call.
 */
const METHOD_DEFINITION =
  /^\s*(?:(?:async|static|public|private|protected|override|get|set)\s+)*\*?[\w$]+\s*\([^()]*\)\s*(?::[^={}]*)?\{\s*\}?\s*$/;

/**
 * The first match of `pattern` (global, ending at the call's `(`) whose arguments are not all
 * literals: code built from literals alone runs nothing a user chose.
 */
function dynamicCall(
  text: string,
  pattern: RegExp,
  args: "first" | "all" = "first",
): RegExpMatchArray | undefined {
  if (METHOD_DEFINITION.test(text)) return undefined;
  const literal = args === "first" ? FIRST_ARG_LITERAL : ALL_ARGS_LITERAL;
  for (const match of text.matchAll(pattern)) {
    literal.lastIndex = match.index! + match[0].length;
    if (!literal.test(text)) return match;
  }
  return undefined;
}

/**
 * `secret` cut to its first characters and `…`: at most 4, and at most a third of it, so a
 * short password is not shown whole.
 */
function mask(secret: string): string {
  return secret.slice(0, Math.min(4, Math.floor(secret.length / 3))) + "…";
}

/** Token shapes that are secrets wherever they appear (also masked out of every snippet). */
const AWS_ACCESS_KEY_ID = /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g;
const OPENAI_KEY = /(?<![\w-])sk-[A-Za-z0-9_-]{20,}/g;
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9]{36}\b|github_pat_[A-Za-z0-9_]{22,})/g;
/**
 * `name = "value"`, `name: "value"`, `"name": "value"`, `name := "value"`, `name => "value"`,
 * where the name ends in a secret word (`dbPassword`, `client_secret`, `GITHUB_TOKEN`).
 */
const SECRET_ASSIGNMENT = new RegExp(
  String.raw`(?<![\w.-])(?<name>[\w.-]*?(?:password|passwd|pwd|secret|api_?key|token))["']?\s*` +
    String.raw`(?::=|=>|=(?!=)|:)\s*(?<q>["'\`])(?<value>(?:(?!\k<q>)[^\\]|\\.)*)\k<q>`,
  "gi",
);
const AWS_SECRET_KEY =
  /aws_?secret_?access_?key["']?\s*(?::=|=>|=(?!=)|:)\s*["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi;

/** `text` with every secret-shaped token masked, so no finding quotes a secret whole. */
function redact(text: string): string {
  let out = text;
  for (const pattern of [AWS_ACCESS_KEY_ID, OPENAI_KEY, GITHUB_TOKEN]) {
    out = out.replace(pattern, (token) => mask(token));
  }
  out = out.replace(AWS_SECRET_KEY, (all: string, key: string) => all.replace(key, mask(key)));
  return out.replace(SECRET_ASSIGNMENT, (all: string, ...rest: unknown[]) => {
    const value = (rest.at(-1) as { value: string }).value;
    return value ? all.replace(value, mask(value)) : all;
  });
}

/**
 * The line as quoted in a finding, as Markdown inline code: secrets masked, whitespace collapsed,
 * at most 120 characters, fenced with double backticks when it holds a backtick itself.
 */
function snippet(text: string): string {
  const flat = redact(text).replace(/\s+/g, " ").trim();
  const cut = flat.length > 120 ? `${flat.slice(0, 119)}…` : flat;
  return cut.includes("`") ? `\`\` ${cut} \`\`` : `\`${cut}\``;
}

/**
 * Values of `password = "…"` that are placeholders, not secrets: empty or short (under 4
 * characters), prose (contains a space), interpolations and references (`${X}`, `{{x}}`, `$X`,
 * `%(x)s`, `<password>`), repeated characters, and the usual stand-ins (`changeme`, `example`…).
 */
function isPlaceholder(value: string): boolean {
  return value.length < 4 || /\s/.test(value) || /\$\{|\{\{|%\(|%s|^\$\w+$|^<.*>$/.test(value) ||
    /^(.)\1*$/.test(value) ||
    /^(?:password|passwd|secret|token|test|testing|none|null|nil|undefined|todo|tbd|xxx+)$/i
      .test(value) ||
    /change[-_ ]?me|example|placeholder|dummy|redacted|fake|sample|^(?:your|my)[-_]/i.test(value);
}

/** Where a comment starts on a line, by file kind (whole-line `*` continues a block comment). */
const COMMENT_START: Record<FileLanguage, RegExp> = {
  js: /\/\/|\/\*|^\s*\*/,
  python: /#/,
  code: /\/\/|\/\*|^\s*\*|#|^\s*--/,
  data: /#|\/\/|^\s*;/,
  markup: /<!--/,
};
/** A line that is only a comment: code rules skip it. */
const COMMENT_LINE: Record<FileLanguage, RegExp> = {
  js: /^\s*(?:\/\/|\/\*|\*)/,
  python: /^\s*#/,
  code: /^\s*(?:\/\/|\/\*|\*|#|--)/,
  data: /^\s*(?:#|\/\/|;)/,
  markup: /^\s*<!--/,
};

const CODE: readonly FileLanguage[] = ["js", "python", "code"];
const ALL: readonly FileLanguage[] = ["js", "python", "code", "data", "markup"];

const ruleNote = (id: string) => `\n\n(local rule \`${id}\`)`;

// --- Rules ---------------------------------------------------------------------------------

/** A SQL statement inside text: the keywords in upper case, as code writes them (see below). */
const SQL =
  /\b(?:SELECT\b[^;]{0,500}?\b(?:FROM|WHERE)|INSERT\s+INTO|UPDATE\s+[\w."`[\]]+\s+SET|DELETE\s+FROM|DELETE\b[^;]{0,200}?\bWHERE)\b/;
const SQL_KEYWORD = /\b(?:SELECT|INSERT|UPDATE|DELETE)\b/;
// An unterminated literal ends at the end of the line: each literal is matched once, so the scan
// stays linear (a line of escaped quotes with no closing one made the closed-only form quadratic).
const LITERALS = /"(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$)|`(?:[^`\\]|\\.)*(?:`|$)/g;

/**
 * How a line builds SQL from values, or `undefined`. Upper-case keywords only, so UI text such as
 * `"Select a file from " + dir` is not SQL; tagged templates (`` sql`… ${id}` ``) are the safe,
 * parameterized form and are not flagged; `execute("… %s", (x,))` passes parameters and is fine.
 */
function sqlBuilding(text: string, language: FileLanguage): string | undefined {
  if (!SQL_KEYWORD.test(text)) return undefined; // cheap pre-check before tokenizing
  const literals = [...text.matchAll(LITERALS)];
  if (literals.length === 0) return undefined;
  if (!SQL.test(literals.map((m) => m[0].slice(1, -1)).join(" "))) return undefined;
  for (const m of literals) {
    const start = m.index!;
    const end = start + m[0].length;
    const before = text.slice(Math.max(0, start - 40), start);
    const after = text.slice(end, end + 40);
    if (m[0][0] === "`" && m[0].includes("${") && !/[\w$.)\]]$/.test(before)) {
      return "interpolating into a template literal";
    }
    if (
      language === "python" && /(?:^|\W)(?:[fF][rR]?|[rR][fF])$/.test(before) &&
      /\{[^{}]+\}/.test(m[0])
    ) return "interpolating into an f-string";
    if (
      (/\+\s*$/.test(before) && !/["'`]\s*\+\s*$/.test(before)) ||
      /^\s*\+(?!=)\s*[^\s"'`]/.test(after)
    ) return "string concatenation";
    if (/^\s*%\s*[\w([{]/.test(after)) return "`%` formatting";
    if (/^\.format\s*\(/.test(after)) return "`.format()`";
    if (/\b(?:Sprintf|String\.format)\s*\(\s*$/.test(before) && /%[sv]/.test(m[0])) {
      return "`Sprintf`-style formatting";
    }
  }
  return undefined;
}

/** The comment a line adds and the marker in it (`TODO`, `FIXME`, `XXX`, `HACK`), if any. */
function markerComment(text: string, language: FileLanguage) {
  const start = text.search(COMMENT_START[language]);
  if (start < 0) return undefined;
  const comment = text.slice(start);
  const marker = comment.match(/\b(TODO|FIXME|XXX|HACK)\b/)?.[1];
  return marker ? { marker, comment } : undefined;
}

const execHit = (
  title: string,
  what: string,
  line: string,
  suggestion: string,
  id: string,
): RuleHit => ({
  title,
  description: `This line runs ${what} on a value that is not a constant: ${
    snippet(line)
  }. If any part of it can come from a request, a file or another user, that is arbitrary code or command execution with the service's privileges.${
    ruleNote(id)
  }`,
  suggestion,
});

const secretHit = (what: string, shown: string, id: string, rotate: string): RuleHit => ({
  title: `Hard-coded ${what} (${shown})`,
  description:
    `This line commits a hard-coded ${what} (${shown}). Anything pushed is leaked: Git history, forks and clones keep it even after a later commit deletes the line.${
      ruleNote(id)
    }`,
  suggestion:
    `${rotate} Remove it from the code and read it at run time from the environment or a secrets manager (e.g. \`Deno.env.get("NAME")\`, \`os.environ["NAME"]\`), and purge it from history if the repository is or was public.`,
});

/**
 * The rules table. Each entry is one named check; entries sharing a `rule` give at most one
 * finding per line (the first entry wins). To add a check, add an entry here and a case to the
 * table test in `local_test.ts`.
 *
 * @example
 * ```ts
 * LINE_RULES.filter((r) => r.rule === "secret").map((r) => r.id); // ["aws-access-key-id", …]
 * ```
 */
export const LINE_RULES: readonly LineRule[] = [
  // --- code-execution: critical. Only calls whose argument is not a plain string literal.
  {
    // `evaluate(`, `obj.eval(`, `function eval(` and method definitions are not calls of eval.
    id: "eval",
    rule: "code-execution",
    severity: "critical",
    languages: ["js", "code"],
    scope: "code",
    check: (text) =>
      dynamicCall(
          text,
          /(?<![\w$.])(?<!\bfunction\s+)(?:(?:window|globalThis|self|global)\.)?eval\s*\(/g,
        )
        ? execHit(
          "`eval()` on a dynamic value",
          "`eval()`",
          text,
          "Remove `eval`: parse data with `JSON.parse`, and map names to behaviour with an explicit object of allowed functions instead of building code.",
          "eval",
        )
        : undefined,
  },
  {
    id: "new-function",
    rule: "code-execution",
    severity: "critical",
    languages: ["js"],
    scope: "code",
    check: (text) =>
      dynamicCall(text, /\bnew\s+Function\s*\(/g, "all")
        ? execHit(
          "`new Function()` on a dynamic value",
          "`new Function()`",
          text,
          "Write the function in code (or pick one from an explicit map of allowed functions); never compile code from strings.",
          "new-function",
        )
        : undefined,
  },
  {
    // A string first argument is compiled like eval; a function argument is the normal form.
    id: "string-timer",
    rule: "code-execution",
    severity: "critical",
    languages: ["js"],
    scope: "code",
    check: (text) => {
      const match = text.match(
        /(?<![\w$.])(?:(?:window|globalThis|self)\.)?(setTimeout|setInterval)\s*\(\s*["'`]/,
      );
      return match
        ? {
          title: `\`${match[1]}()\` with a string of code`,
          description: `\`${match[1]}\` compiles a string argument like \`eval\`: ${
            snippet(text)
          }. It is code execution if any part of the string can be influenced, and it breaks under a Content-Security-Policy without \`unsafe-eval\`.${
            ruleNote("string-timer")
          }`,
          suggestion: `Pass a function instead: \`${match[1]}(() => doWork(), delayMs)\`.`,
        }
        : undefined;
    },
  },
  {
    // Only bare `exec(`/`execSync(` (destructured from child_process) or calls on receivers named
    // like child_process or shelljs: `regex.exec(text)` and `db.exec(sql)` are not shell calls.
    id: "child-process-exec",
    rule: "code-execution",
    severity: "critical",
    languages: ["js"],
    scope: "code",
    check: (text) =>
      dynamicCall(
          text,
          /(?:(?<![\w$.])(?<!\bfunction\s+)|\b(?:child_process|childProcess|cp|shelljs|shell)\.)(?:exec|execSync)\s*\(/g,
        )
        ? execHit(
          "Shell command built from a dynamic value (`exec`/`execSync`)",
          "a shell command (`exec`/`execSync`)",
          text,
          'Run the program without a shell and pass values as separate arguments: `execFile("git", ["log", ref])` or `spawn(cmd, args)` (in Deno, `new Deno.Command(cmd, { args })`), and validate the values against an allow-list.',
          "child-process-exec",
        )
        : undefined,
  },
  {
    // `ast.literal_eval(` and `def eval(` are not matched.
    id: "python-eval-exec",
    rule: "code-execution",
    severity: "critical",
    languages: ["python"],
    scope: "code",
    check: (text) =>
      dynamicCall(text, /(?<![\w.])(?<!\bdef\s+)(?:eval|exec)\s*\(/g)
        ? execHit(
          "Python `eval()`/`exec()` on a dynamic value",
          "Python `eval()`/`exec()`",
          text,
          "Parse data with `json.loads` or `ast.literal_eval`, and dispatch through an explicit dict of allowed functions instead of evaluating strings.",
          "python-eval-exec",
        )
        : undefined,
  },
  {
    id: "python-os-system",
    rule: "code-execution",
    severity: "critical",
    languages: ["python"],
    scope: "code",
    check: (text) =>
      dynamicCall(
          text,
          /\b(?:os\.(?:system|popen)|subprocess\.(?:getoutput|getstatusoutput))\s*\(/g,
        )
        ? execHit(
          "Shell command built from a dynamic value (`os.system`)",
          "a shell command (`os.system`/`os.popen`)",
          text,
          'Use `subprocess.run(["prog", arg], check=True)` with an argument list and no shell; if shell syntax is really needed, quote every value with `shlex.quote`.',
          "python-os-system",
        )
        : undefined,
  },
  {
    // `shell=True` must be on the same line as the call (multi-line calls are missed, not guessed).
    id: "python-subprocess-shell",
    rule: "code-execution",
    severity: "critical",
    languages: ["python"],
    scope: "code",
    check: (text) =>
      /\bshell\s*=\s*True\b/.test(text) &&
        dynamicCall(
          text,
          /(?<![\w])(?:subprocess\.)?(?:run|call|check_call|check_output|Popen)\s*\(/g,
        )
        ? execHit(
          "`subprocess` with `shell=True` on a dynamic command",
          "a shell command (`subprocess` with `shell=True`)",
          text,
          'Pass the command as a list and drop `shell=True`: `subprocess.run(["ls", path], check=True)`; quote with `shlex.quote` if a shell is unavoidable.',
          "python-subprocess-shell",
        )
        : undefined,
  },

  // --- secret: critical, in every kind of file and in comments. Specific shapes first.
  {
    id: "aws-access-key-id",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      const key = text.match(AWS_ACCESS_KEY_ID)?.[0];
      return key
        ? secretHit(
          "AWS access key id",
          mask(key),
          "aws-access-key-id",
          "Deactivate and delete the key in IAM now.",
        )
        : undefined;
    },
  },
  {
    id: "aws-secret-access-key",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      const key = [...text.matchAll(AWS_SECRET_KEY)][0]?.[1];
      return key
        ? secretHit(
          "AWS secret access key",
          mask(key),
          "aws-secret-access-key",
          "Deactivate and delete the key pair in IAM now.",
        )
        : undefined;
    },
  },
  {
    // The key's body is on the following lines; the header alone proves a key is committed.
    id: "private-key",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      const kind = text.match(/-----BEGIN ((?:RSA |EC |OPENSSH |DSA )?)PRIVATE KEY-----/)?.[1];
      return kind === undefined ? undefined : secretHit(
        `${kind}private key`,
        "PEM block",
        "private-key",
        "Treat the key as compromised: revoke it and issue a new one.",
      );
    },
  },
  {
    // A digit is required: real keys are random, while `sk-some-long-kebab-case-name` is not.
    id: "openai-key",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      const key = text.match(OPENAI_KEY)?.find((k) => /\d/.test(k));
      return key
        ? secretHit(
          "API key (`sk-…`)",
          mask(key),
          "openai-key",
          "Revoke the key in the provider's dashboard now.",
        )
        : undefined;
    },
  },
  {
    id: "github-token",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      const token = text.match(GITHUB_TOKEN)?.[0];
      return token
        ? secretHit(
          "GitHub token",
          mask(token),
          "github-token",
          "Revoke the token in GitHub (Settings → Developer settings) now.",
        )
        : undefined;
    },
  },
  {
    // A quoted literal assigned to a name ending in password/passwd/pwd/secret/api_key/token.
    // Placeholders are skipped (see isPlaceholder); `max_tokens = "…"` and `token_type` do not end
    // in a secret name; comparisons (`==`) are not assignments; unquoted YAML values are missed.
    id: "secret-assignment",
    rule: "secret",
    severity: "critical",
    languages: ALL,
    scope: "any",
    check: (text) => {
      for (const match of text.matchAll(SECRET_ASSIGNMENT)) {
        const { name, value } = match.groups!;
        if (isPlaceholder(value)) continue;
        // Bounded, so a title stays short whatever the line holds.
        const shown = name.length > 60 ? `…${name.slice(-59)}` : name;
        return secretHit(
          `credential in \`${shown}\``,
          `"${mask(value)}"`,
          "secret-assignment",
          "Rotate the credential now.",
        );
      }
      return undefined;
    },
  },

  // --- sql-injection: warning. The values may be trusted (a constant table name); a line alone
  // cannot tell, so this asks for parameters rather than asserting an injection.
  {
    id: "sql-string-building",
    rule: "sql-injection",
    severity: "warning",
    languages: CODE,
    scope: "code",
    check: (text, file) => {
      const how = sqlBuilding(text, file.language);
      return how
        ? {
          title: `SQL built by ${how}`,
          description: `This line builds a SQL statement by ${how}: ${
            snippet(text)
          }. A value containing a quote changes the statement (SQL injection) unless every interpolated value is a trusted constant.${
            ruleNote("sql-string-building")
          }`,
          suggestion:
            'Pass values as bound parameters (`db.query("SELECT … WHERE id = $1", [id])`, `cursor.execute("… WHERE id = %s", (id,))`, or a tagged template such as ``sql`… ${id}` ``); allow-list identifiers such as table or column names.',
        }
        : undefined;
    },
  },

  // --- debugging: breakpoints stop the process (warning); console output is noise (info).
  {
    id: "debugger-statement",
    rule: "debugging",
    severity: "warning",
    languages: ["js"],
    scope: "code",
    check: (text) =>
      /(?<![\w$.])debugger\s*(?:;|$)/.test(text)
        ? {
          title: "`debugger` statement left in",
          description:
            `A \`debugger\` statement pauses execution whenever developer tools or an inspector are attached.${
              ruleNote("debugger-statement")
            }`,
          suggestion: "Delete the `debugger` statement before merging.",
        }
        : undefined,
  },
  {
    // Same weight as `debugger`: a breakpoint blocks a server process waiting on a terminal.
    id: "python-breakpoint",
    rule: "debugging",
    severity: "warning",
    languages: ["python"],
    scope: "code",
    check: (text) =>
      /\b(?:i?pdb|pudb)\.set_trace\s*\(|(?<![\w.])breakpoint\s*\(\s*\)/.test(text)
        ? {
          title: "Python breakpoint left in",
          description: `${
            snippet(text)
          } stops the program and waits for a debugger on the terminal: a server or job hangs there.${
            ruleNote("python-breakpoint")
          }`,
          suggestion: "Delete the breakpoint (and the `import pdb`) before merging.",
        }
        : undefined,
  },
  {
    id: "console-log",
    rule: "debugging",
    severity: "info",
    languages: ["js"],
    scope: "code",
    skipInScripts: true,
    check: (text) => {
      const call = text.match(/(?<![\w$.])console\.(log|debug)\s*\(/)?.[1];
      return call
        ? {
          title: `\`console.${call}\` left in`,
          description: `Debug output added to application code: ${snippet(text)}.${
            ruleNote("console-log")
          }`,
          suggestion:
            "Remove it, or use the project's logger at an appropriate level (e.g. `log.debug`) so the output can be turned off and never carries secrets or personal data.",
        }
        : undefined;
    },
  },
  {
    id: "python-print",
    rule: "debugging",
    severity: "info",
    languages: ["python"],
    scope: "code",
    skipInScripts: true,
    check: (text) =>
      /(?<![\w.])(?<!\bdef\s+)print\s*\(/.test(text)
        ? {
          title: "`print()` left in",
          description: `Debug output added to application code: ${snippet(text)}.${
            ruleNote("python-print")
          }`,
          suggestion:
            "Remove it, or log through `logging.getLogger(__name__).debug(…)` so the output can be turned off.",
        }
        : undefined,
  },

  // --- todo: info, only inside a comment (a `"TODO"` string or a `# TODO` Markdown heading is not
  // one; in Markdown and HTML only `<!-- … -->` is a comment).
  {
    id: "todo-comment",
    rule: "todo",
    severity: "info",
    languages: ALL,
    scope: "any",
    check: (text, file) => {
      const found = markerComment(text, file.language);
      return found
        ? {
          title: `${found.marker} comment added`,
          description: `This change adds a ${found.marker} comment: ${
            snippet(found.comment)
          }. Work left in comments is easily forgotten once the pull request merges.${
            ruleNote("todo-comment")
          }`,
          suggestion:
            "Resolve it in this pull request, or open an issue and reference it in the comment (e.g. `TODO(#123): …`) so the work is tracked.",
        }
        : undefined;
    },
  },
];

// --- Files ---------------------------------------------------------------------------------

/** Extensions by file kind; any other extension (or none: `Dockerfile`, `Makefile`) is code. */
const EXTENSIONS: Record<Exclude<FileLanguage, "code">, string> = {
  js: "js jsx ts tsx mjs cjs mts cts vue svelte",
  python: "py pyi pyw",
  data: "json jsonc json5 yaml yml toml ini cfg conf env lock csv tsv properties",
  markup: "md mdx markdown txt rst adoc html htm xml svg",
};
const LANGUAGE_BY_EXTENSION = new Map(
  Object.entries(EXTENSIONS).flatMap(([language, list]) =>
    list.split(" ").map((ext) => [ext, language as FileLanguage] as const)
  ),
);

/**
 * The kind of file a path names: by extension; `.env*` files are data, `README`-style files are
 * markup, the rest is code.
 */
function languageOf(path: string): FileLanguage {
  const name = path.slice(path.lastIndexOf("/") + 1).toLowerCase();
  if (name.startsWith(".env")) return "data";
  if (/^(?:readme|licen[cs]e|changelog|notice|authors|contributing|copying)$/.test(name)) {
    return "markup";
  }
  const dot = name.lastIndexOf(".");
  return (dot > 0 ? LANGUAGE_BY_EXTENSION.get(name.slice(dot + 1)) : undefined) ?? "code";
}

/** Tests, scripts, benchmarks and examples: console output there is intended. */
function isScript(path: string): boolean {
  return SCRIPT_DIRECTORY.test(path) || SCRIPT_FILE.test(path);
}
const SCRIPT_DIRECTORY =
  /(?:^|\/)(?:tests?|__tests__|spec|scripts?|bin|bench|benchmarks?|examples?)\//i;
const SCRIPT_FILE = /[._-](?:test|spec|bench)\.[^/]+$|(?:^|\/)(?:test_[^/]*|conftest)\.py$/i;

/** Removed lines of a section (after its first hunk header, so `--- a/x` is not counted). */
function removedLineCount(section: string): number {
  const firstHunk = section.search(/^@@ /m);
  if (firstHunk < 0) return 0;
  return section.slice(firstHunk).match(/^-/gm)?.length ?? 0;
}

// --- The agent -----------------------------------------------------------------------------

/**
 * Creates the built-in rule-based reviewer. It reads only `request.diff`, only its added lines,
 * and emits `status`, one `finding` per hit (at most `maxFindings`), `summary`, then `done`. It
 * never uses the network; an aborted signal makes it throw the signal's reason between files.
 *
 * Rules (see {@link LINE_RULES}): code execution on dynamic input (critical), hard-coded secrets
 * (critical, masked), SQL built from strings (warning), breakpoints (warning), console output and
 * `TODO`-style comments (info), and very large added files (info).
 *
 * @example
 * ```ts
 * const agent = createLocalAgent({ maxFindings: 50 });
 * await agent.review(request, { signal, emit: (e) => events.push(e), fetch, log: console.warn });
 * ```
 */
export function createLocalAgent(options: LocalAgentOptions = {}): ReviewAgent {
  const maxAddedFileLines = options.maxAddedFileLines ?? 1000;
  const maxFindings = options.maxFindings ?? 200;
  return {
    kind: "local",
    async review(request: AgentRequest, { signal, emit }: AgentContext): Promise<void> {
      signal.throwIfAborted();
      const sections = splitDiff(request.diff);
      const files = sections.filter((s) => !s.binary && !s.deleted);
      const binary = sections.filter((s) => s.binary).length;
      const deleted = sections.filter((s) => s.deleted && !s.binary).length;
      const added = files.map((s) => addedLines(s.text));
      const totalAdded = added.reduce((n, lines) => n + lines.length, 0);
      const skipped = binary + deleted > 0
        ? ` (skipping ${binary} binary and ${deleted} deleted file${deleted === 1 ? "" : "s"})`
        : "";
      emit({
        type: "status",
        message: `local reviewer: scanning ${files.length} file${
          files.length === 1 ? "" : "s"
        }, ${totalAdded} added line${totalAdded === 1 ? "" : "s"}${skipped}`,
      });

      const bySeverity: Record<Severity, number> = { critical: 0, warning: 0, info: 0 };
      const byRule = new Map<LocalRuleName, number>();
      let dropped = 0;
      let longLines = 0;
      const report = (rule: LocalRuleName, finding: AgentFinding) => {
        if (bySeverity.critical + bySeverity.warning + bySeverity.info >= maxFindings) {
          dropped++;
          return;
        }
        bySeverity[finding.severity]++;
        byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
        emit({ type: "finding", finding });
      };

      let scanned = 0;
      for (const [i, section] of files.entries()) {
        signal.throwIfAborted();
        const lines = added[i];
        if (lines.length === 0) continue;
        const file: LocalFile = {
          path: section.path,
          language: languageOf(section.path),
          script: isScript(section.path),
        };
        const isNew = /^new file mode /m.test(section.text) || /^@@ -0,0 /m.test(section.text);
        // "Mostly additions": at least 80% of the changed lines are added ones.
        if (
          lines.length > maxAddedFileLines &&
          (isNew || removedLineCount(section.text) * 4 <= lines.length)
        ) {
          report("large-file", {
            severity: "info",
            file_path: file.path,
            // Line 1 for a new file; else the first added line, which a review comment can target.
            line_number: lines[0].line,
            title: `Very large addition (${lines.length} added lines)`,
            description:
              `This change adds ${lines.length} lines to \`${file.path}\`, more than the ${maxAddedFileLines} a reviewer can check carefully in one sitting. Files this large are often generated (bundles, lockfiles, snapshots, fixtures).${
                ruleNote("large-file")
              }`,
            suggestion:
              "If the file is generated, generate it in the build instead of committing it, or mark it `linguist-generated=true` in `.gitattributes` so reviews skip it; otherwise split it into smaller modules or pull requests.",
            agent_type: "local",
          });
        }
        const rules = LINE_RULES.filter((r) =>
          r.languages.includes(file.language) && !(r.skipInScripts && file.script)
        );
        for (const { line, text: full } of lines) {
          // Yield now and then: lease renewals, HTTP answers and an abort must not wait for a
          // large diff.
          if (++scanned % 1_000 === 0) {
            await new Promise((resolve) => setTimeout(resolve, 0));
            signal.throwIfAborted();
          }
          if (full.length > MAX_LINE_CHARS) longLines++;
          const text = full.length > MAX_LINE_CHARS ? full.slice(0, MAX_LINE_CHARS) : full;
          if (text.trim() === "") continue;
          const commentOnly = COMMENT_LINE[file.language].test(text);
          const hitRules = new Set<LocalRuleName>();
          for (const rule of rules) {
            if (hitRules.has(rule.rule) || (rule.scope === "code" && commentOnly)) continue;
            const hit = rule.check(text, file);
            if (!hit) continue;
            hitRules.add(rule.rule);
            report(rule.rule, {
              severity: rule.severity,
              file_path: file.path,
              line_number: line,
              ...hit,
              agent_type: "local",
            });
          }
        }
      }

      const total = bySeverity.critical + bySeverity.warning + bySeverity.info;
      const rules = [...byRule].map(([rule, n]) => `${rule} ${n}`).join(", ");
      const parts = [
        `Local rule-based review: scanned ${files.length} file${
          files.length === 1 ? "" : "s"
        } (${totalAdded} added line${
          totalAdded === 1 ? "" : "s"
        }; removed and context lines are not reviewed)${skipped}.`,
        total === 0
          ? "No findings."
          : `${total} finding${
            total === 1 ? "" : "s"
          }: ${bySeverity.critical} critical, ${bySeverity.warning} warning, ${bySeverity.info} info (${rules}).`,
      ];
      if (dropped > 0) {
        parts.push(
          `${dropped} more finding${
            dropped === 1 ? " was" : "s were"
          } dropped over the limit of ${maxFindings}.`,
        );
      }
      if (longLines > 0) {
        parts.push(
          `${longLines} line${
            longLines === 1 ? "" : "s"
          } longer than ${MAX_LINE_CHARS} characters were checked in their first ${MAX_LINE_CHARS} only.`,
        );
      }
      emit({ type: "summary", text: parts.join(" ") });
      emit({ type: "done" });
    },
  };
}
