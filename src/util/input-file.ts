import fs from 'node:fs';
import { DataError, NoInputError, NoPermError } from './errors.js';

export interface InputFileOptions {
  /** refuse anything larger (65) */
  maxBytes: number;
  /** what the file is, for messages: "policy", "public key" … */
  what: string;
}

export interface InputFile {
  data: Buffer;
  /** fstat of the descriptor the data was read from */
  stat: fs.Stats;
}

const human = (n: number): string => (n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(0)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} bytes`);

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'unknown type';
}

/**
 * Read an operator-supplied input file (policy, key …) safely: only a regular file, at most
 * `maxBytes`. The path is stat'ed first, so a FIFO, a device (/dev/zero) or a directory is
 * refused before it is ever opened (opening some devices has side effects; reading a FIFO or
 * /dev/zero never ends). It is then opened with O_NONBLOCK (an open that could block returns
 * at once) and the descriptor's fstat must be the same regular file, which closes the race
 * with a swap between stat and open. At most maxBytes + 1 bytes are read, so a file that grows
 * meanwhile is still refused rather than read without bound.
 *
 * Errors: missing → 66, permission denied → 77, not a regular file or too large → 65.
 */
export function readInputFile(file: string, opts: InputFileOptions): InputFile {
  const fail = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NoInputError(`${opts.what} ${file} not found`);
    if (code === 'EACCES' || code === 'EPERM') throw new NoPermError(`${opts.what} ${file}: permission denied`);
    if (code === 'ELOOP') throw new DataError(`${opts.what} ${file}: too many levels of symbolic links`);
    throw new NoInputError(`cannot read ${opts.what} ${file}: ${(e as Error).message}`);
  };
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return fail(e);
  }
  if (!st.isFile()) throw new DataError(`${opts.what} ${file} is not a regular file (${kindOf(st)})`);
  if (st.size > opts.maxBytes) throw new DataError(`${opts.what} ${file} is too large (${human(st.size)}; at most ${human(opts.maxBytes)})`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (e) {
    return fail(e);
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) throw new DataError(`${opts.what} ${file} was replaced while being opened; try again`);
    // Sized by fstat, grown (still bounded) if the file grows while being read.
    let buf = Buffer.allocUnsafe(Math.min(opts.maxBytes + 1, Math.max(now.size + 1, 4096)));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > opts.maxBytes) throw new DataError(`${opts.what} ${file} is too large (more than ${human(opts.maxBytes)})`);
        const bigger = Buffer.allocUnsafe(Math.min(opts.maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return { data: buf.subarray(0, n), stat: now };
  } catch (e) {
    if (e instanceof DataError) throw e;
    return fail(e);
  } finally {
    fs.closeSync(fd);
  }
}
