import assert from "node:assert/strict";
import type { Finding, Severity } from "../kv/records.ts";
import { FindingSchema, SeveritySchema } from "../kv/records.ts";
import type { AgentFinding } from "./agent_events.ts";
import { AgentFindingSchema } from "./agent_events.ts";
import { countBySeverity, mapAgentFinding, mapAgentSeverity } from "./findings.ts";

const AGENT_SEVERITIES = AgentFindingSchema.shape.severity.options;

Deno.test("mapAgentSeverity follows the original worker's table", () => {
  const table: Array<[AgentFinding["severity"], Severity]> = [
    ["critical", "critical"],
    ["warning", "medium"],
    ["info", "info"],
  ];
  assert.deepEqual(table.map(([agent]) => agent).sort(), [...AGENT_SEVERITIES].sort());
  for (const [agent, stored] of table) assert.equal(mapAgentSeverity(agent), stored, agent);
});

const agentFinding = (over: Partial<AgentFinding> = {}): AgentFinding => ({
  severity: "warning",
  file_path: "src/a.ts",
  line_number: 12,
  title: "Unchecked input",
  description: "The body is used before validation.",
  suggestion: "Parse it with zod first.",
  agent_type: "security",
  ...over,
});

Deno.test("mapAgentFinding: table of inputs and stored findings", () => {
  const { suggestion: _s, ...noSuggestion } = agentFinding();
  const cases: Array<{ name: string; input: AgentFinding; expected: Finding }> = [
    {
      name: "all fields",
      input: agentFinding(),
      expected: {
        severity: "medium",
        file_path: "src/a.ts",
        line_start: 12,
        title: "Unchecked input",
        description: "The body is used before validation.",
        suggestion: "Parse it with zod first.",
        agent_type: "security",
      },
    },
    {
      name: "no suggestion, no line",
      input: { ...noSuggestion, severity: "critical", line_number: null },
      expected: {
        severity: "critical",
        file_path: "src/a.ts",
        line_start: null,
        title: "Unchecked input",
        description: "The body is used before validation.",
        agent_type: "security",
      },
    },
    {
      name: "empty suggestion is kept",
      input: agentFinding({ severity: "info", suggestion: "", line_number: 0 }),
      expected: {
        severity: "info",
        file_path: "src/a.ts",
        line_start: 0,
        title: "Unchecked input",
        description: "The body is used before validation.",
        suggestion: "",
        agent_type: "security",
      },
    },
  ];
  for (const { name, input, expected } of cases) {
    const mapped = mapAgentFinding(input);
    assert.deepEqual(mapped, expected, name);
    assert.equal("suggestion" in mapped, "suggestion" in expected, name);
    assert.equal("line_number" in mapped, false, name);
  }
});

Deno.test("every agent severity maps to a valid stored finding that keeps its fields", () => {
  const lines = [null, 0, 1, 9999];
  const texts = ["", "x", "a | b\nc", "é😀"];
  let checked = 0;
  for (const severity of AGENT_SEVERITIES) {
    for (const line_number of lines) {
      for (const text of texts) {
        for (const suggestion of [undefined, text]) {
          const input = agentFinding({
            severity,
            line_number,
            file_path: `p/${text}`,
            title: text,
            description: text,
            agent_type: text,
            suggestion,
          });
          if (suggestion === undefined) delete input.suggestion;
          const mapped = mapAgentFinding(input);
          assert.ok(FindingSchema.safeParse(mapped).success);
          assert.equal(mapped.severity, mapAgentSeverity(severity));
          assert.ok(SeveritySchema.options.includes(mapped.severity));
          assert.equal(mapped.line_start, line_number);
          assert.equal(mapped.file_path, input.file_path);
          assert.equal(mapped.title, text);
          assert.equal(mapped.description, text);
          assert.equal(mapped.agent_type, text);
          assert.equal(mapped.suggestion, suggestion);
          assert.equal("suggestion" in mapped, suggestion !== undefined);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 3 * lines.length * texts.length * 2);
});

Deno.test("countBySeverity counts every stored severity", () => {
  const base = { file_path: "a", line_start: 1, title: "t", description: "d", agent_type: "x" };
  const cases: Array<[Severity[], Record<Severity, number>]> = [
    [[], { critical: 0, high: 0, medium: 0, low: 0, info: 0 }],
    [["critical", "medium", "medium"], { critical: 1, high: 0, medium: 2, low: 0, info: 0 }],
    [
      ["info", "low", "high", "critical", "medium", "low"],
      { critical: 1, high: 1, medium: 1, low: 2, info: 1 },
    ],
  ];
  for (const [severities, expected] of cases) {
    assert.deepEqual(
      countBySeverity(severities.map((severity) => ({ ...base, severity }))),
      expected,
    );
  }
});

Deno.test("a finding with huge fields still fits one KV value", () => {
  const huge = "😀".repeat(20_000);
  const mapped = mapAgentFinding({
    severity: "info",
    file_path: huge,
    line_number: 1,
    title: huge,
    description: huge,
    suggestion: huge,
    agent_type: huge,
  });
  assert.ok(new TextEncoder().encode(JSON.stringify(mapped)).length < 60_000);
  assert.ok(FindingSchema.safeParse(mapped).success);
});
