import picomatch from 'picomatch';
import type { Policy, Rule } from './types.js';

/**
 * Why a path is or is not in scope, pattern by pattern, following the Selector's rule:
 * a global exclude removes a path from every rule; otherwise the LAST rule whose paths match
 * and whose own exclude does not, governs it.
 */
export interface RuleVerdict {
  index: number;
  rule: Rule;
  /** the `paths` pattern that matched, or null */
  matched: string | null;
  /** the rule's `exclude` pattern that removed it, or null */
  excludedBy: string | null;
}

export interface Explanation {
  path: string;
  /** the governing rule, or null when out of scope */
  rule: Rule | null;
  globalExclude: string | null;
  verdicts: RuleVerdict[];
  /** one-paragraph reason, for people */
  reason: string;
}

const PM = { dot: true } as const;
function firstMatch(patterns: string[], p: string): string | null {
  for (const pat of patterns) if (new RegExp(picomatch.makeRe(pat, PM).source, 's').test(p)) return pat;
  return null;
}

export function explainPath(policy: Pick<Policy, 'rules' | 'exclude'>, p: string): Explanation {
  const verdicts = policy.rules.map((rule, index) => {
    const matched = firstMatch(rule.paths, p);
    return { index, rule, matched, excludedBy: matched ? firstMatch(rule.exclude, p) : null };
  });
  const g = firstMatch(policy.exclude, p);
  if (g) return { path: p, rule: null, globalExclude: g, verdicts, reason: `out of scope: the global exclude "${g}" removes it from every rule` };
  const gov = [...verdicts].reverse().find((v) => v.matched && !v.excludedBy);
  const excluded = verdicts.filter((v) => v.matched && v.excludedBy);
  const desc = (v: RuleVerdict): string => `rule #${v.index + 1} "${v.rule.name}"`;
  if (!gov) {
    const why = excluded.length
      ? `${excluded.map((v) => `${desc(v)} matches "${v.matched}" but excludes it by "${v.excludedBy}"`).join('; ')}, and no other rule matches it`
      : "no rule's paths match it";
    return { path: p, rule: null, globalExclude: null, verdicts, reason: `not covered: ${why}` };
  }
  const earlier = verdicts.filter((v) => v.index < gov.index && v.matched && !v.excludedBy);
  const laterExcl = excluded.filter((v) => v.index > gov.index);
  let reason = `governed by ${desc(gov)}: it matches "${gov.matched}"`;
  if (earlier.length) reason += `; it also matches ${earlier.map(desc).join(', ')}, but the last matching rule wins`;
  if (laterExcl.length)
    reason += `; ${laterExcl.map((v) => `${desc(v)} matches "${v.matched}" but excludes it by "${v.excludedBy}"`).join('; ')}, so it falls back to this rule`;
  return { path: p, rule: gov.rule, globalExclude: null, verdicts, reason };
}
