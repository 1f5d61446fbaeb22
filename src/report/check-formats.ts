import type { CheckResult } from '../app/check.js';
import type { ContentDiff } from '../app/content-diff.js';

/** The report formats of check (snapshot and verify speak them too). */
export type ReportFormat = 'text' | 'json' | 'ndjson' | 'ecs';
export const REPORT_FORMATS: readonly ReportFormat[] = ['text', 'json', 'ndjson', 'ecs'];

/** The check report in the chosen format (text, json, ndjson, ecs). */
export async function renderCheck(r: CheckResult, format: ReportFormat, diffs?: Map<string, ContentDiff>): Promise<string> {
  switch (format) {
    case 'ndjson':
      return (await import('./ndjson.js')).checkNdjson(r);
    case 'ecs':
      return (await import('./ecs.js')).checkEcs(r);
    case 'json':
      return `${JSON.stringify((await import('./check-report.js')).checkJson(r), null, 2)}\n`;
    default:
      return (await import('./check-report.js')).checkText(r, diffs);
  }
}
