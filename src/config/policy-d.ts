import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { parsePolicy } from '../core/policy.js';
import type { Policy } from '../core/types.js';
import { DataError, NoInputError } from '../util/errors.js';
import { dropInFiles } from './drop-ins.js';

/** Keys a drop-in may set: it adds rules and excludes, never changes hashing, alerts or trust. */
const DROPIN_KEYS = new Set(['version', 'rules', 'exclude']);

export { dropInFiles };

/**
 * The base policy with /etc/integ/policy.d/*.yml appended in name order: each drop-in is a
 * policy file (version: 1, rules, optional exclude) validated on its own, so errors name the
 * drop-in's file and line. Its rules come after the base rules, so a drop-in can narrow or
 * override a broader rule (the last matching rule governs a path); its excludes are global.
 * The merged text is what the store records and digests.
 */
export function mergeDropIns(base: Policy, dir: string): Policy {
  const files = dropInFiles(dir);
  if (!files.length) return base;
  const merged = parse(base.text) as Record<string, unknown>;
  const rules = [...((merged.rules as unknown[]) ?? [])];
  const exclude = [...((merged.exclude as unknown[]) ?? [])];
  const names = new Map(base.rules.map((r) => [r.name, base.source] as const));
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new NoInputError(`cannot read policy drop-in ${f}: ${(e as Error).message}`);
    }
    const p = parsePolicy(text, f);
    const raw = parse(text) as Record<string, unknown>;
    const extra = Object.keys(raw).filter((k) => !DROPIN_KEYS.has(k));
    if (extra.length)
      throw new DataError(
        `${f}: a policy drop-in may only add "rules" and "exclude", not ${extra.map((k) => `"${k}"`).join(', ')} (set those in the main policy)`,
      );
    for (const r of p.rules) {
      const prev = names.get(r.name);
      if (prev) throw new DataError(`${f}: rule name "${r.name}" is already used in ${prev}`);
      names.set(r.name, f);
    }
    rules.push(...((raw.rules as unknown[]) ?? []));
    exclude.push(...((raw.exclude as unknown[]) ?? []));
  }
  merged.rules = rules;
  if (exclude.length) merged.exclude = exclude;
  const header = `# integ effective policy: ${base.source} + ${files.map((f) => path.basename(f)).join(', ')} from ${dir}\n`;
  return parsePolicy(header + stringify(merged), `${base.source} + ${dir}/{${files.map((f) => path.basename(f)).join(',')}}`);
}
