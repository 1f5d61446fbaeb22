import { LineCounter, parseDocument, isNode, visit, type Document } from 'yaml';
import { z } from 'zod';
import { DataError } from '../util/errors.js';
import { ATTRIBUTES, HASH_ALGOS, SEVERITIES, type CheckItem, type Policy } from './types.js';

/** Checked when a rule names none: everything but `growing`. */
const DEFAULT_CHECK: CheckItem[] = [...ATTRIBUTES];

/** Longest path or glob accepted: Linux's PATH_MAX. picomatch itself refuses more than 65,536 characters. */
export const MAX_PATTERN_LENGTH = 4096;
/** Alias expansions allowed while reading the YAML: a policy needs few; a "billion laughs" document needs many. */
export const MAX_ALIAS_COUNT = 100;
const pattern = z
  .string()
  .min(1)
  .max(MAX_PATTERN_LENGTH, `expected a path or glob of at most ${MAX_PATTERN_LENGTH} characters`)
  .refine((s) => s.startsWith('/'), { message: 'expected an absolute path or glob starting with "/"' })
  // ".." would reach outside the policy's tree (and outside --root): never meaningful here.
  .refine((s) => !/(^|\/)\.\.(\/|$)/.test(s), { message: 'a path or glob may not contain ".." (name the directory itself)' })
  .refine((s) => !s.includes('\0'), { message: 'a path or glob may not contain a NUL character' });
const durationRe = /^(\d+)\s*(s|m|h|d)?$/;
const duration = z.union([z.number().int().nonnegative(), z.string().regex(durationRe, 'expected a duration such as 3600, "30m", "1h" or "2d"')]);
const sizeRe = /^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i;
const size = z.union([z.number().int().nonnegative(), z.string().regex(sizeRe, 'expected a size such as 1048576, "64MiB" or "1GiB"')]);

const ruleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a name of letters, digits, ".", "_" or "-"'),
    severity: z.enum(SEVERITIES).default('medium'),
    paths: z.array(pattern).min(1, 'expected at least one path'),
    exclude: z.array(pattern).default([]),
    check: z
      .array(z.enum([...ATTRIBUTES, 'growing'] as [string, ...string[]]))
      .min(1, 'expected at least one attribute to compare (leave "check" out for the default list)')
      .default(DEFAULT_CHECK),
    keep_content: z.boolean().default(false),
    keep_content_max_bytes: size.default('1MiB'),
    keep_content_exclude: z.array(pattern).default([]),
  })
  .strict();

const policySchema = z
  .object({
    version: z.literal(1),
    hash: z.union([z.enum(HASH_ALGOS), z.array(z.enum(HASH_ALGOS)).min(1)]).default('blake3'),
    exclude: z.array(pattern).default([]),
    rules: z.array(ruleSchema).min(1, 'expected at least one rule'),
    on_alert: z
      .object({
        snapshot: z.boolean().default(true),
        cooldown: duration.default('1h'),
        copy_max_file_bytes: size.default('16MiB'),
        copy_max_total_bytes: size.default('256MiB'),
      })
      .strict()
      .default({}),
    retention: z
      .object({ max_bundles: z.number().int().positive().default(50), max_bytes: size.default('2GiB') })
      .strict()
      .default({}),
    trust: z
      .object({ public_key: z.string().min(1).optional() })
      .strict()
      .default({}),
    ioc: z.array(z.string().min(1)).default([]),
  })
  .strict();

function seconds(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = durationRe.exec(v)!;
  const mult = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * mult;
}

function bytes(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = sizeRe.exec(v)!;
  const unit = (m[2] ?? 'B').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  return Number(m[1]) * mult[unit]!;
}

function locate(doc: Document, lc: LineCounter, path: (string | number)[]): string {
  // Walk down to the deepest node that exists, so a missing key points at its parent.
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      const pos = lc.linePos(node.range[0]);
      return `${pos.line}:${pos.col}`;
    }
  }
  return '1:1';
}

function describePath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top level)';
}

/**
 * Parse and validate a policy. Every problem is a DataError (exit 65) whose message names
 * the file, line and column and what was expected.
 */
export function parsePolicy(text: string, source: string): Policy {
  const lc = new LineCounter();
  // logLevel 'error': the yaml package would otherwise print Node warnings (e.g. for a
  // collection used as a key) around our one-line error.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new DataError(`${source}:${pos.line}:${pos.col}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const at = (offset: number | undefined): string => {
    const pos = lc.linePos(offset ?? 0);
    return `${pos.line}:${pos.col}`;
  };
  let firstAlias: number | undefined;
  let aliases = 0;
  visit(doc, {
    Alias(_, node) {
      aliases++;
      firstAlias ??= node.range?.[0];
      if (aliases > MAX_ALIAS_COUNT) throw new DataError(`${source}:${at(node.range?.[0])}: invalid YAML: more than ${MAX_ALIAS_COUNT} aliases`);
      if (node.resolve(doc) === undefined)
        throw new DataError(`${source}:${at(node.range?.[0])}: invalid YAML: alias *${node.source} refers to no anchor defined before it`);
    },
  });
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (e instanceof DataError) throw e;
    if (aliases > 0 && /alias/i.test((e as Error).message))
      throw new DataError(`${source}:${at(firstAlias)}: invalid YAML: aliases expand too far (more than ${MAX_ALIAS_COUNT} expansions; an alias bomb?)`);
    throw new DataError(`${source}:1:1: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new DataError(`${source}:1:1: expected a mapping with "version: 1" and "rules:"`);
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    let msg = issue.message;
    if (issue.code === 'invalid_enum_value') msg = `expected one of ${issue.options.join(' | ')}, got ${JSON.stringify(issue.received)}`;
    else if (issue.code === 'unrecognized_keys') msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    else if (issue.code === 'invalid_literal' && issue.path[0] === 'version') msg = `expected version: 1, got ${JSON.stringify(issue.received)}`;
    else if (issue.code === 'invalid_type')
      msg = issue.received === 'undefined' ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${issue.received}`;
    throw new DataError(`${source}:${locate(doc, lc, issue.path)}: ${describePath(issue.path)}: ${msg}`);
  }
  const p = parsed.data;
  const seen = new Set<string>();
  p.rules.forEach((r, i) => {
    if (seen.has(r.name)) throw new DataError(`${source}:${locate(doc, lc, ['rules', i, 'name'])}: rules[${i}].name: duplicate rule name "${r.name}"`);
    seen.add(r.name);
  });
  return {
    version: 1,
    hash: [...new Set(Array.isArray(p.hash) ? p.hash : [p.hash])],
    exclude: p.exclude,
    rules: p.rules.map((r) => ({
      name: r.name,
      severity: r.severity,
      paths: r.paths,
      exclude: r.exclude,
      check: r.check as CheckItem[],
      keepContent: r.keep_content,
      keepContentMaxBytes: bytes(r.keep_content_max_bytes),
      keepContentExclude: r.keep_content_exclude,
    })),
    onAlert: {
      snapshot: p.on_alert.snapshot,
      cooldownSeconds: seconds(p.on_alert.cooldown),
      copyMaxFileBytes: bytes(p.on_alert.copy_max_file_bytes),
      copyMaxTotalBytes: bytes(p.on_alert.copy_max_total_bytes),
    },
    retention: { maxBundles: p.retention.max_bundles, maxBytes: bytes(p.retention.max_bytes) },
    trust: { publicKey: p.trust.public_key ?? null },
    ioc: p.ioc,
    source,
    text,
  };
}
