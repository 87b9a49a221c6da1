/**
 * Mapping the agent's findings to the stored scale.
 *
 * @module
 */
import type { Finding, Severity } from "../kv/records.ts";
import type { AgentFinding } from "./agent_events.ts";

const SEVERITY_MAP: Record<AgentFinding["severity"], Severity> = {
  critical: "critical",
  warning: "medium",
  info: "info",
};

/** The stored severities, most severe first. */
export const SEVERITY_ORDER: readonly Severity[] = ["critical", "high", "medium", "low", "info"];

/**
 * Maps an agent severity to the stored scale.
 *
 * @example
 * ```ts
 * mapAgentSeverity("warning"); // "medium"
 * ```
 */
export function mapAgentSeverity(severity: AgentFinding["severity"]): Severity {
  return SEVERITY_MAP[severity];
}

/**
 * Maps an agent finding to a stored finding.
 *
 * @example
 * ```ts
 * mapAgentFinding({ severity: "info", file_path: "a.ts", line_number: 3, title: "t",
 *   description: "d", agent_type: "style" }).line_start; // 3
 * ```
 */
export function mapAgentFinding(finding: AgentFinding): Finding {
  const mapped: Finding = {
    severity: mapAgentSeverity(finding.severity),
    file_path: finding.file_path,
    line_start: finding.line_number,
    title: finding.title,
    description: finding.description,
    agent_type: finding.agent_type,
  };
  if (finding.suggestion !== undefined) mapped.suggestion = finding.suggestion;
  return mapped;
}

/**
 * Counts findings per severity (every severity present, zero when none).
 *
 * @example
 * ```ts
 * countBySeverity([]).critical; // 0
 * ```
 */
export function countBySeverity(findings: Finding[]): Record<Severity, number> {
  const counts = Object.fromEntries(SEVERITY_ORDER.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) counts[f.severity]++;
  return counts;
}
