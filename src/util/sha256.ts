import crypto from 'node:crypto';
import fs from 'node:fs';

/** SHA-256 of bytes or a UTF-8 string, as lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of a file read in 1 MiB pieces (flat memory), and its length. */
export function sha256File(file: string): { sha256: string; bytes: number } {
  const h = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  let bytes = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      h.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: h.digest('hex'), bytes };
}

/** SHA-256 of a file, streamed without blocking the event loop. */
export async function sha256FileAsync(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
