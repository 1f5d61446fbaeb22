import picomatch from 'picomatch';
import type { Policy, Rule } from './types.js';

type Matcher = (s: string) => boolean;
const PM_OPTS = { dot: true } as const;

/**
 * picomatch's regular expressions use "." which does not match a newline, and Linux file
 * names may contain one: compile with the dotAll flag so such names stay in scope.
 */
function compile(patterns: string[]): Matcher {
  if (patterns.length === 0) return () => false;
  // One alternation per list: a single regex test per path and list.
  const source = patterns.map((p) => `(?:${picomatch.makeRe(p, PM_OPTS).source})`).join('|');
  const re = new RegExp(source, 's');
  return (s) => re.test(s);
}

interface CompiledRule {
  rule: Rule;
  include: Matcher;
  exclude: Matcher;
  /** true when everything below a directory is excluded for this rule */
  excludesTree: Matcher;
  /** static prefixes of the include patterns: nothing outside them can match */
  bases: string[];
  /** per include pattern: can anything below this directory match it? */
  below: Array<(dir: string) => boolean>;
}

/**
 * Whether something below directory `dir` can match `pattern`, segment by segment: "/home/*\/.ssh/**"
 * needs /home/alice/.ssh walked but not /home/alice/Downloads. Patterns with braces or
 * extglobs fall back to their static base.
 */
function belowMatcher(pattern: string, base: string): (dir: string) => boolean {
  if (/[{}()]/.test(pattern)) return (dir) => isUnder(dir, base) || isUnder(base, dir);
  const segs = pattern.split('/').slice(1).map((seg) => (seg === '**' ? null : picomatch(seg, PM_OPTS)));
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

function treeMatcher(patterns: string[]): Matcher {
  // "/x/**" excludes the whole tree below /x: a directory matching "/x" can be pruned.
  const trees = patterns.filter((p) => p.endsWith('/**')).map((p) => p.slice(0, -3) || '/');
  return compile(trees);
}

function isUnder(child: string, parent: string): boolean {
  return parent === '/' || child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

function staticBase(pattern: string): string {
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
      bases: rule.paths.map(staticBase),
      below: rule.paths.map((p) => belowMatcher(p, staticBase(p))),
    }));
    this.globalExclude = compile(policy.exclude);
    this.globalTree = treeMatcher(policy.exclude);
    const all = [...new Set(this.rules.flatMap((r) => r.bases))].sort();
    this.roots = all.filter((b) => !all.some((o) => o !== b && isUnder(b, o)));
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
    return this.rules.some((r) => !r.excludesTree(dir) && r.below.some((m) => m(dir)));
  }
}
