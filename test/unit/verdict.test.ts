import { describe, expect, it } from 'vitest';
import { checkExitCode, exitCodeOf, isAlert, summarize } from '../../src/core/verdict.js';
import { compareEntry } from '../../src/core/compare.js';
import { rec, rule } from '../helpers/build.js';

describe("exitCodeOf: every command's exit code from its outcome", () => {
  const s = (added: number, removed: number, changed: number, errors: number) => ({ scanned: 10, added, removed, changed, errors });
  it('check: the bitmask; baseline: 8 when incomplete; diff: 1 different; verify: 16 not intact; others 0', () => {
    expect(exitCodeOf({ command: 'check', summary: s(1, 0, 2, 1) })).toBe(13);
    expect(exitCodeOf({ command: 'baseline', unreadable: 0 })).toBe(0);
    expect(exitCodeOf({ command: 'baseline', unreadable: 3 })).toBe(8);
    expect(exitCodeOf({ command: 'diff', same: true })).toBe(0);
    expect(exitCodeOf({ command: 'diff', same: false })).toBe(1);
    expect(exitCodeOf({ command: 'verify', intact: true })).toBe(0);
    expect(exitCodeOf({ command: 'verify', intact: false })).toBe(16);
    expect(exitCodeOf({ command: 'done' })).toBe(0);
  });
  it('an alert is any added, removed or changed entry; unreadable entries alone are not one', () => {
    expect(isAlert(s(0, 0, 0, 5))).toBe(false);
    expect(isAlert(s(0, 1, 0, 0))).toBe(true);
  });
});

describe('checkExitCode', () => {
  it('sums 1 added, 2 removed, 4 changed, 8 incomplete', () => {
    const s = (added: number, removed: number, changed: number, errors: number) => ({ scanned: 10, added, removed, changed, errors });
    expect(checkExitCode(s(0, 0, 0, 0))).toBe(0);
    expect(checkExitCode(s(1, 0, 0, 0))).toBe(1);
    expect(checkExitCode(s(0, 3, 0, 0))).toBe(2);
    expect(checkExitCode(s(0, 0, 2, 0))).toBe(4);
    expect(checkExitCode(s(1, 1, 1, 0))).toBe(7);
    expect(checkExitCode(s(0, 0, 0, 1))).toBe(8);
    expect(checkExitCode(s(2, 0, 1, 4))).toBe(13);
  });

  it('counts findings by kind', () => {
    const r = rule();
    const f = [compareEntry(null, rec(), r)!, compareEntry(rec(), null, r)!, compareEntry(rec(), rec({ mode: 1 }), r)!, compareEntry(null, rec(), r)!];
    expect(summarize(7, f, 2)).toEqual({ scanned: 7, added: 2, removed: 1, changed: 1, errors: 2 });
  });
});
