import { describe, expect, it } from 'vitest';
import { bytesDiffer, unifiedLines } from '../../src/app/content-diff.js';

describe('content diff helpers', () => {
  it('bytesDiffer counts differing positions and the length difference', () => {
    expect(bytesDiffer(Buffer.from('abcd'), Buffer.from('abXd'))).toBe(1);
    expect(bytesDiffer(Buffer.from('ab'), Buffer.from('abcd'))).toBe(2);
    expect(bytesDiffer(Buffer.from(''), Buffer.from(''))).toBe(0);
  });
  it('unifiedLines: headers, hunk, 3 lines of context, control characters escaped, bounded', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    const b = a.replace('l10', 'L10\x1b[2J');
    const r = unifiedLines('/etc/x', a, b, 100);
    expect(r.lines).toEqual([
      '--- a/etc/x\t(known-good)',
      '+++ b/etc/x\t(now)',
      '@@ -8,7 +8,7 @@',
      ' l7',
      ' l8',
      ' l9',
      '-l10',
      '+L10\\x1b[2J',
      ' l11',
      ' l12',
      ' l13',
    ]);
    const cut = unifiedLines('/etc/x', a, b, 4);
    expect(cut.lines).toHaveLength(4);
    expect(cut.omitted).toBe(7);
  });
  it('gives up on a line diff of texts that differ everywhere', () => {
    const a = Array.from({ length: 12000 }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: 12000 }, (_, i) => `b${i}`).join('\n');
    const r = unifiedLines('/big', a, b, 60);
    expect(r.lines[2]).toMatch(/^\(more than \d+ lines differ: no line-by-line diff\)$/);
  });
});
