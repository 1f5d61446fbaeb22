import { CommanderError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UNTRUSTED_HINT, exitCodeFor } from '../../src/cli.js';
import { DataError, LockedError, TrustError, writeErrorFor } from '../../src/util/errors.js';

describe('exitCodeFor: the one place errors become exit codes', () => {
  const writes: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    writes.length = 0;
  });
  const capture = () => vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (writes.push(String(s)), true));

  it('prints one line for expected errors and returns their code', () => {
    capture();
    expect(exitCodeFor(new DataError('p.yml:1:1: bad'))).toBe(65);
    expect(exitCodeFor(new TrustError('tampered'))).toBe(16);
    expect(exitCodeFor(new LockedError('busy'))).toBe(75);
    // 16 says, on the same line, how to recover
    expect(writes).toEqual(['integ: p.yml:1:1: bad\n', `integ: tampered${UNTRUSTED_HINT}\n`, 'integ: busy\n']);
    expect(UNTRUSTED_HINT).toMatch(/to recover: .*integ diff .*integ baseline --db NEW\.db/);
  });

  it('treats anything else as a bug: 70, the stack, and how to report it', () => {
    capture();
    expect(exitCodeFor(new TypeError('x is undefined'))).toBe(70);
    expect(writes.join('')).toMatch(/internal error: x is undefined\n[\s\S]*at [\s\S]*This is a bug in integ [\d.]+\. Please report it/);
  });

  it('maps commander usage errors to 64 and help to 0', () => {
    capture();
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toBe(64);
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    expect(exitCodeFor(new CommanderError(0, 'commander.version', '0.1.0'))).toBe(0);
    expect(exitCodeFor(new CommanderError(1, 'commander.help', '(outputHelp)'))).toBe(64); // no command given
  });

  it('maps write failures: full disk and I/O to 74, permissions and missing folders to 73', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(writeErrorFor(e('ENOSPC'), 'w').exitCode).toBe(74);
    expect(writeErrorFor(e('ENOSPC'), 'w').message).toBe('w: no space left on device');
    expect(writeErrorFor(e('EIO'), 'w').exitCode).toBe(74);
    expect(writeErrorFor(e('EACCES'), 'w').exitCode).toBe(73);
    expect(writeErrorFor(e('EROFS'), 'w').exitCode).toBe(73);
  });
});
