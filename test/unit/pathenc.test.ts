import { describe, expect, it } from 'vitest';
import { pathForTerminal, pathFromArg, pathJson, pathToText } from '../../src/core/pathenc.js';

describe('path encoding', () => {
  const bad = Buffer.concat([Buffer.from('/etc/a'), Buffer.from([0xff, 0xfe]), Buffer.from('é')]);

  it('keeps valid UTF-8 as is, newline included, with no base64', () => {
    expect(pathJson(Buffer.from('/etc/new\nline'))).toEqual({ path: '/etc/new\nline' });
    expect(pathJson(Buffer.from('/etc/café'))).toEqual({ path: '/etc/café' });
  });

  it('escapes invalid bytes for reading and gives the exact bytes in base64', () => {
    const j = pathJson(bad);
    expect(j.path).toBe('/etc/a\\xff\\xfeé');
    expect(Buffer.from(j.path_b64!, 'base64').equals(bad)).toBe(true);
    expect(pathFromArg(`b64:${j.path_b64}`).equals(bad)).toBe(true);
  });

  it('never lets a name forge a line on a terminal', () => {
    expect(pathForTerminal(Buffer.from('/tmp/x\nOK 0 changed\t\x1b[2J'))).toBe('/tmp/x\\nOK 0 changed\\t\\x1b[2J');
    expect(pathToText(Buffer.from([0x2f, 0xc3]))).toBe('/\\xc3');
  });
});

describe('textForTerminal / pathForTerminal (issue 13 item 7)', () => {
  it('escapes C0, DEL, C1 and bidirectional controls, and nothing else', async () => {
    const { textForTerminal, pathForTerminal } = await import('../../src/core/pathenc.js');
    expect(textForTerminal('a\u001b[2Jb\nc\td\re\u007f')).toBe('a\\x1b[2Jb\\nc\\td\\re\\x7f');
    expect(textForTerminal('abc\u202egnp.exe \u2066x\u2069 \u202a\u202b\u202c\u202d \u200e\u200f\u061c \u0085')).toBe(
      'abc\\u202egnp.exe \\u2066x\\u2069 \\u202a\\u202b\\u202c\\u202d \\u200e\\u200f\\u061c \\u0085',
    );
    expect(textForTerminal('été/日本/ok-file_1.txt')).toBe('été/日本/ok-file_1.txt');
    // check's paths get the same treatment (one escaper for both)
    expect(pathForTerminal(Buffer.from('/etc/\u202eevil'))).toBe('/etc/\\u202eevil');
  });
});

describe('integ diff of two bundles prints hostile artifact text escaped', () => {
  it('a process name with ESC, C1 and a bidi override cannot act on the terminal', async () => {
    const { snapshotDiffText } = await import('../../src/report/snapshot-report.js');
    const chalk = (await import('chalk')).default;
    chalk.level = 0; // colour codes are ESC sequences of our own; this test is about the bundle's text
    const text = snapshotDiffText(
      {
        same: false,
        sections: [{ name: 'processes', added: [{ comm: 'x\u001b[2J\u0085\u202eexe.sh' }], removed: [] }],
        skipped: [{ name: 'logins\u202e', reason: 'missing \u2066' }],
      },
      'a.tar.gz',
      'b\u202e.tar.gz',
    );
    expect(text).not.toMatch(/[\u001b\u0085\u202a-\u202e\u2066-\u2069]/);
    expect(text).toContain('NEW   {"comm":"x\\u001b[2J\\u0085\\u202eexe.sh"}');
    expect(text).toContain('B: b\\u202e.tar.gz');
  });
});
