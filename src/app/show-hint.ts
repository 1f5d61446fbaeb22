import { explainPath } from '../core/explain.js';
import { pathToText } from '../core/pathenc.js';
import { parsePolicy } from '../core/policy.js';
import type { Generation } from '../store/baseline-repo.js';

/**
 * Why `show PATH` found nothing: no rule of the policy the current generation was taken with
 * covers the path (and why not), or a rule covers it but the path did not exist then.
 */
export function notFoundMessage(p: Buffer, db: string, cur: Generation | undefined, policyText: string | undefined, policySource: string | undefined): string {
  const text = pathToText(p);
  const base = `${text} is in no generation of ${db}`;
  if (!cur || policyText === undefined) return `${base} (give the path exactly as the policy names it; b64:… for names that are not UTF-8)`;
  let e;
  try {
    e = explainPath(parsePolicy(policyText, policySource ?? 'stored policy'), text);
  } catch {
    return `${base} (give the path exactly as the policy names it; b64:… for names that are not UTF-8)`;
  }
  if (!e.rule)
    return `${base}: no rule of the policy generation #${cur.id} was taken with (${policySource}) covers it — ${e.reason.replace(/^(not covered|out of scope): /, '')} ("integ policy explain ${text}" says more)`;
  return `${base}, though rule "${e.rule.name}" covers it: it did not exist (or could not be read) when the generations were taken`;
}
