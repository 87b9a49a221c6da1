/** Percentiles for benchmark reports. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The median of a list (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `min–max` of a list, for showing a floor's spread across rounds. */
export function spread(values: number[], digits = 1): string {
  if (values.length === 0) return "–";
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

/** `p50 … ms, p99 … ms` for a list of milliseconds. */
export function describe(values: number[]): string {
  const f = (n: number) => n.toFixed(1);
  return `p50 ${f(percentile(values, 50))} ms, p99 ${
    f(percentile(values, 99))
  } ms, n=${values.length}`;
}
