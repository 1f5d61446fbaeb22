import { isUtf8 } from 'node:buffer';

/**
 * Linux file names are bytes. Internally integ keeps them as Buffers. For people and
 * JSON it shows them as text:
 * - valid UTF-8 is shown as is (JSON escapes control characters such as newline itself);
 * - otherwise each byte that is not part of valid UTF-8 is written `\xHH` and the exact
 *   bytes are given alongside in base64 (`path_b64` in JSON), so nothing is lost.
 */
export function pathToText(p: Buffer): string {
  if (isUtf8(p)) return p.toString('utf8');
  let out = '';
  let i = 0;
  while (i < p.length) {
    const len = utf8SeqLen(p, i);
    if (len > 0) {
      out += p.subarray(i, i + len).toString('utf8');
      i += len;
    } else {
      out += `\\x${p[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}

/** Length of a valid UTF-8 sequence starting at i, or 0 when the byte there starts none. */
function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? (c <= 0xef ? 3 : 0) : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n === 0 || i + n > b.length) return 0;
  return isUtf8(b.subarray(i, i + n)) ? n : 0;
}

/** For terminals and one-line logs: also escape control characters so a name cannot forge lines. */
export function pathForTerminal(p: Buffer): string {
  return textForTerminal(pathToText(p));
}

/**
 * Characters a terminal acts on rather than shows: C0 and C1 controls and DEL (ESC sequences
 * clear the screen or move the cursor; a newline forges a line) and the bidirectional
 * controls (U+202A-202E embeddings/overrides, U+2066-2069 isolates, U+200E/200F/061C marks)
 * that make a name read differently from its bytes.
 */
const TERMINAL_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Any text that came from outside (a file or bundle entry name, a message quoting one) made
 * safe to print on one terminal line: \n \t \r, \xHH for other C0 controls and DEL, \uHHHH
 * for C1 and bidirectional controls. Everything else is printed as is.
 */
export function textForTerminal(s: string): string {
  return s.replace(TERMINAL_UNSAFE, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** JSON fields naming a path losslessly: {path} or {path, path_b64}. */
export type PathJson<K extends string = 'path'> = { [P in K]: string } & { [P in `${K}_b64`]?: string };

export function pathJson<K extends string = 'path'>(p: Buffer, key: K = 'path' as K): PathJson<K> {
  if (isUtf8(p)) return { [key]: p.toString('utf8') } as PathJson<K>;
  return { [key]: pathToText(p), [`${key}_b64`]: p.toString('base64') } as PathJson<K>;
}

/** Parse a path given on the command line or in JSON back to bytes. `b64:` prefix means base64. */
export function pathFromArg(s: string): Buffer {
  if (s.startsWith('b64:')) return Buffer.from(s.slice(4), 'base64');
  return Buffer.from(s, 'utf8');
}
