import { describe, expect, it } from 'vitest';
import { checkExitCode, summarize } from '../../src/core/verdict.js';
import { compareEntry } from '../../src/core/compare.js';
import { rec, rule } from '../helpers/build.js';

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
