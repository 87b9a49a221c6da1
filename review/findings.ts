/**
 * Mapping the agent's findings to the stored scale.
 *
 * @module
 */
import type { Finding, Severity } from "../kv/records.ts";
import type { AgentFinding } from "./agent_events.ts";
import { truncateUtf8 } from "./text.ts";

const SEVERITY_MAP: Record<AgentFinding["severity"], Severity> = {
  critical: "critical",
  warning: "medium",
  info: "info",
};

/** The stored severities, most severe first. */
export const SEVERITY_ORDER: readonly Severity[] = ["critical", "high", "medium", "low", "info"];

/**
 * A severity's place in {@link SEVERITY_ORDER}: 0 is the most severe.
 *
 * @example
 * ```ts
 * severityRank("critical") < severityRank("info"); // true
 * ```
 */
export function severityRank(severity: Severity): number {
  return SEVERITY_ORDER.indexOf(severity);
}

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

/** Byte bounds per stored field: a finding always fits one KV value (64 KiB). */
const MAX_BYTES = {
  file_path: 1024,
  title: 1024,
  description: 16_384,
  suggestion: 8_192,
  replacement: 8_192,
  agent_type: 256,
};

/**
 * Maps an agent finding to a stored finding (long fields cut to fit one KV value).
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
    file_path: truncateUtf8(finding.file_path, MAX_BYTES.file_path),
    line_start: finding.line_number,
    title: truncateUtf8(finding.title, MAX_BYTES.title),
    description: truncateUtf8(finding.description, MAX_BYTES.description),
    agent_type: truncateUtf8(finding.agent_type, MAX_BYTES.agent_type),
  };
  if (finding.suggestion !== undefined) {
    mapped.suggestion = truncateUtf8(finding.suggestion, MAX_BYTES.suggestion);
  }
  if (
    typeof finding.line_end === "number" && finding.line_number !== null &&
    finding.line_end > finding.line_number
  ) mapped.line_end = finding.line_end;
  // A cut replacement would be wrong code: keep it only whole.
  if (
    finding.replacement !== undefined &&
    new TextEncoder().encode(finding.replacement).byteLength <= MAX_BYTES.replacement
  ) mapped.replacement = finding.replacement;
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
