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
