import assert from "node:assert/strict";
import type { AgentFinding } from "./agent_events.ts";
import { countBySeverity, mapAgentFinding, mapAgentSeverity } from "./findings.ts";

Deno.test("mapAgentSeverity follows the original worker's table", () => {
  const table = [["critical", "critical"], ["warning", "medium"], ["info", "info"]] as const;
  for (const [agent, stored] of table) assert.equal(mapAgentSeverity(agent), stored);
});

Deno.test("mapAgentFinding renames line_number and keeps the rest", () => {
  const finding: AgentFinding = {
    severity: "warning",
    file_path: "src/a.ts",
    line_number: 12,
    title: "Unchecked input",
    description: "The body is used before validation.",
    suggestion: "Parse it with zod first.",
    agent_type: "security",
  };
  assert.deepEqual(mapAgentFinding(finding), {
    severity: "medium",
    file_path: "src/a.ts",
    line_start: 12,
    title: "Unchecked input",
    description: "The body is used before validation.",
    suggestion: "Parse it with zod first.",
    agent_type: "security",
  });
  const { suggestion: _s, ...withoutSuggestion } = finding;
  const mapped = mapAgentFinding({ ...withoutSuggestion, line_number: null });
  assert.equal("suggestion" in mapped, false);
  assert.equal(mapped.line_start, null);
});

Deno.test("countBySeverity counts every stored severity", () => {
  const base = { file_path: "a", line_start: 1, title: "t", description: "d", agent_type: "x" };
  const counts = countBySeverity([
    { ...base, severity: "critical" },
    { ...base, severity: "medium" },
    { ...base, severity: "medium" },
  ]);
  assert.deepEqual(counts, { critical: 1, high: 0, medium: 2, low: 0, info: 0 });
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
});
