import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('integ diff of two snapshots (CLI)', () => {
  it('shows a new outbound connection by its remote endpoint and a process whose argv is not UTF-8, exactly', async () => {
    const d = tmpdir();
    dirs.push(d);
    const out = path.join(d, 'ev');
    const server = net.createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const a = JSON.parse(integ(['snapshot', '--out', out, '--format', 'json']).stdout) as { bundle: string };
      // a client that connects and stays, with an argument that is the single byte 0xff
      const script = `const s=require("net").connect(${port},"127.0.0.1");s.on("connect",()=>console.log("up"));setInterval(()=>{},1e6)`;
      const c = spawn('/bin/sh', ['-c', `exec "${process.execPath}" -e '${script}' "$(printf '\\377')"`], { stdio: ['ignore', 'pipe', 'ignore'] });
      kids.push(c);
      await new Promise<void>((r) => c.stdout!.once('data', () => r()));
      const argv = fs.readFileSync(`/proc/${c.pid}/cmdline`);
      expect(argv.subarray(argv.length - 2)).toEqual(Buffer.from([0xff, 0]));
      // Same second or not, the second bundle gets its own name (a -N suffix within one second).
      const b = JSON.parse(integ(['snapshot', '--out', out, '--format', 'json']).stdout) as { bundle: string };
      expect(b.bundle).not.toBe(a.bundle);
      const r = integ(['diff', a.bundle, b.bundle, '--format', 'json']);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { sections: Array<{ name: string; added: Array<Record<string, unknown>> }> };
      const conns = j.sections.find((s) => s.name === 'connections')!.added;
      expect(conns).toContainEqual({ netns: 'host', proto: 'tcp', direction: 'outbound', remote: `127.0.0.1:${port}`, exe: fs.realpathSync(process.execPath) });
      const procs = j.sections.find((s) => s.name === 'processes')!.added;
      const p = procs.find((x) => (x['cmdline'] as string[]).includes(script))!;
      expect((p['cmdline'] as string[]).at(-1)).toBe('\\xff');
      expect(Buffer.from((p['cmdline_b64'] as Record<string, string>)['3']!, 'base64')).toEqual(Buffer.from([0xff]));
      const text = integ(['diff', a.bundle, b.bundle]);
      expect(text.stdout).toMatch(/^connections:$/m);
      expect(text.stdout).toContain(`"remote":"127.0.0.1:${port}"`);
    } finally {
      server.close();
    }
  });
});
