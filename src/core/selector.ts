import picomatch from 'picomatch';
import type { Policy, Rule } from './types.js';

type Matcher = (s: string) => boolean;
const PM_OPTS = { dot: true } as const;

/** Characters that may make a pattern a glob for picomatch; a pattern with none is a plain path. */
const GLOB_CHARS = /[*?[\]{}()!+@]/;

/** Path prefixes of p, shortest first: "/a/b" → "/a", "/a/b" (not "/"). */
function* prefixes(p: string): Generator<string> {
  for (let i = 1; i <= p.length; i++) if (i === p.length || p.charCodeAt(i) === 0x2f) yield p.slice(0, i);
}

/**
 * Compile a list of patterns into one matcher that stays fast for lists of hundreds of
 * thousands: plain paths (no glob syntax) go into a Set; globs are grouped by their static
 * base (what precedes the first glob segment; a glob cannot match outside it) and each group
 * becomes one alternation, so a path is tested only against the groups of its own ancestors.
 * picomatch's regular expressions use "." which does not match a newline, and Linux file
 * names may contain one: compile with the dotAll flag so such names stay in scope.
 */
function compile(patterns: string[]): Matcher {
  if (patterns.length === 0) return () => false;
  const literals = new Set<string>();
  const groups = new Map<string, string[]>();
  for (const p of patterns) {
    const odd = p.includes('\\') || p.endsWith('/'); // escapes or a trailing slash: let picomatch decide, from "/"
    if (!odd && !GLOB_CHARS.test(p)) {
      literals.add(p);
      continue;
    }
    const s = picomatch.scan(p);
    if (!s.isGlob && !odd) {
      literals.add(p);
      continue;
    }
    const base = odd ? '/' : s.base.replace(/\/+$/, '') || '/';
    const g = groups.get(base);
    if (g) g.push(picomatch.makeRe(p, PM_OPTS).source);
    else groups.set(base, [picomatch.makeRe(p, PM_OPTS).source]);
  }
  const res = new Map<string, RegExp>();
  for (const [base, sources] of groups) res.set(base, new RegExp(sources.map((x) => `(?:${x})`).join('|'), 's'));
  const root = res.get('/');
  res.delete('/');
  const few = res.size <= 8 ? [...res].map(([b, re]) => [b, `${b}/`, re] as const) : null;
  return (p) => {
    if (literals.size > 0 && literals.has(p)) return true; // (a lookup hashes the whole path, even in an empty set)
    if (root?.test(p)) return true;
    if (res.size === 0) return false;
    if (few) {
      for (const [b, under, re] of few) if ((p === b || p.startsWith(under)) && re.test(p)) return true;
      return false;
    }
    for (const a of prefixes(p)) {
      const re = res.get(a);
      if (re && re.test(p)) return true;
    }
    return false;
  };
}

interface CompiledRule {
  rule: Rule;
  include: Matcher;
  exclude: Matcher;
  /** true when everything below a directory is excluded for this rule */
  excludesTree: Matcher;
  /** static prefixes of the include patterns: nothing outside them can match */
  bases: string[];
  /** can anything below this directory match one of the include patterns? */
  below: (dir: string) => boolean;
}

/**
 * Whether something below directory `dir` can match `pattern`, segment by segment: "/home/*\/.ssh/**"
 * needs /home/alice/.ssh walked but not /home/alice/Downloads. Patterns with braces or
 * extglobs fall back to their static base.
 */
function belowMatcher(pattern: string, base: string): (dir: string) => boolean {
  if (/[{}()]/.test(pattern)) return (dir) => isUnder(dir, base) || isUnder(base, dir);
  const segs = pattern
    .split('/')
    .slice(1)
    .map((seg) => (seg === '**' ? null : picomatch(seg, PM_OPTS)));
  return (dir) => {
    const parts = dir === '/' ? [] : dir.split('/').slice(1);
    for (let i = 0; i < parts.length; i++) {
      if (i >= segs.length - 1) return segs.slice(0, i + 1).includes(null) || segs[segs.length - 1] === null;
      const m = segs[i] ?? null;
      if (m === null) return true;
      if (!m(parts[i]!)) return false;
    }
    return true;
  };
}

function isUnder(child: string, parent: string): boolean {
  return parent === '/' || child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

/**
 * belowMatcher over a whole list, fast for lists of hundreds of thousands: for a plain path
 * only its proper ancestors lead to it (a set); the walk must go down from every ancestor of
 * a glob's static base (a set); below a base, only the globs of that base are asked, each
 * compiled the first time it is needed.
 */
function belowIndex(patterns: string[]): (dir: string) => boolean {
  const above = new Set<string>();
  const groups = new Map<string, { patterns: string[]; matchers: Array<(dir: string) => boolean> | null }>();
  for (const p of patterns) {
    if (!GLOB_CHARS.test(p) && !p.includes('\\') && !p.endsWith('/')) {
      above.add('/');
      for (const a of prefixes(p)) if (a !== p) above.add(a);
      continue;
    }
    const base = staticBase(p);
    above.add('/');
    for (const a of prefixes(base)) above.add(a);
    const g = groups.get(base);
    if (g) g.patterns.push(p);
    else groups.set(base, { patterns: [p], matchers: null });
  }
  const ask = (base: string, dir: string): boolean => {
    const g = groups.get(base);
    if (!g) return false;
    g.matchers ??= g.patterns.map((p) => belowMatcher(p, base));
    return g.matchers.some((m) => m(dir));
  };
  return (dir) => {
    if (above.has(dir)) return true;
    if (ask('/', dir)) return true;
    for (const a of prefixes(dir)) if (ask(a, dir)) return true;
    return false;
  };
}

function treeMatcher(patterns: string[]): Matcher {
  // "/x/**" excludes the whole tree below /x: a directory matching "/x" can be pruned.
  const trees = patterns.filter((p) => p.endsWith('/**')).map((p) => p.slice(0, -3) || '/');
  return compile(trees);
}

function staticBase(pattern: string): string {
  if (!GLOB_CHARS.test(pattern) && !pattern.includes('\\')) return pattern.replace(/\/+$/, '') || '/';
  const s = picomatch.scan(pattern);
  const base = s.isGlob ? s.base : pattern;
  return base === '' ? '/' : base.replace(/\/+$/, '') || '/';
}

/**
 * The policy compiled for the walk.
 * How rules combine: global `exclude` removes a path from every rule. Otherwise the LAST rule
 * (in file order) whose `paths` match the path and whose own `exclude` does not, governs it —
 * so a later, narrower rule overrides an earlier, broader one (like .gitignore). A path that
 * a rule excludes falls back to the earlier rules. A path no rule governs is out of scope.
 */
export class Selector {
  private readonly rules: CompiledRule[];
  private readonly globalExclude: Matcher;
  private readonly globalTree: Matcher;
  /** top-level directories (or files) to walk; none is below another */
  readonly roots: string[];

  constructor(policy: Pick<Policy, 'rules' | 'exclude'>) {
    this.rules = policy.rules.map((rule) => ({
      rule,
      include: compile(rule.paths),
      exclude: compile(rule.exclude),
      excludesTree: treeMatcher(rule.exclude),
      bases: [...new Set(rule.paths.map(staticBase))],
      below: belowIndex(rule.paths),
    }));
    this.globalExclude = compile(policy.exclude);
    this.globalTree = treeMatcher(policy.exclude);
    // Roots: the bases that have no other base above them (a Set lookup per ancestor, not a
    // comparison with every other base: policies may list hundreds of thousands of paths).
    const all = new Set<string>();
    for (const r of this.rules) for (const b of r.bases) all.add(b);
    this.roots = [...all].filter((b) => b === '/' || (!all.has('/') && ![...prefixes(b)].some((a) => a !== b && all.has(a)))).sort();
  }

  /** The rule governing this path, or null when it is out of scope. */
  ruleFor(path: string): Rule | null {
    if (this.globalExclude(path)) return null;
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i]!;
      if (r.include(path) && !r.exclude(path)) return r.rule;
    }
    return null;
  }

  /** Whether anything below directory `dir` could be in scope (prunes the walk). */
  mayDescend(dir: string): boolean {
    if (this.globalTree(dir)) return false;
    return this.rules.some((r) => !r.excludesTree(dir) && r.below(dir));
  }
}
