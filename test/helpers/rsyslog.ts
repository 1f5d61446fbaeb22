import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import dgram from 'node:dgram';

export const RSYSLOGD = '/usr/sbin/rsyslogd';

/** A free TCP (or UDP) port on 127.0.0.1, chosen by the kernel. */
export async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Rsyslog {
  udp: number;
  tcp: number;
  sock: string;
  out: string;
  /** lines written so far: input|facility.severity|app|msgid|structured-data|msg */
  lines(): string[];
  waitFor(pred: (lines: string[]) => boolean, ms?: number): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * A private rsyslogd on 127.0.0.1: its own config, pid file, work dir, unix socket and
 * output file in `dir`, listening on free UDP and TCP ports; stopped by stop().
 */
export async function startRsyslog(dir: string): Promise<Rsyslog> {
  const udp = await freePort('udp');
  const tcp = await freePort('tcp');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work, { recursive: true });
  const sock = path.join(dir, 'log.sock');
  const out = path.join(dir, 'out.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(
    conf,
    `global(workDirectory="${work}")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="${udp}")
input(type="imtcp" address="127.0.0.1" port="${tcp}")
input(type="imuxsock" Socket="${sock}" CreatePath="on" UseSpecialParser="off" ParseHostname="on")
template(name="t" type="list") { property(name="inputname") constant(value="|") property(name="syslogfacility-text") constant(value=".") property(name="syslogseverity-text") constant(value="|") property(name="app-name") constant(value="|") property(name="msgid") constant(value="|") property(name="structured-data") constant(value="|") property(name="msg") constant(value="\\n") }
*.* action(type="omfile" file="${out}" template="t")
`,
  );
  const child: ChildProcess = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Ready when the socket exists and the TCP port accepts.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited ${child.exitCode}: ${stderr}`);
    const ok =
      fs.existsSync(sock) &&
      (await new Promise<boolean>((r) => {
        const c = net.connect({ host: '127.0.0.1', port: tcp }, () => {
          c.destroy();
          r(true);
        });
        c.once('error', () => r(false));
      }));
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`rsyslogd did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const lines = (): string[] => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean) : []);
  return {
    udp,
    tcp,
    sock,
    out,
    lines,
    async waitFor(pred, ms = 10_000) {
      const end = Date.now() + ms;
      for (;;) {
        const l = lines();
        if (pred(l) || Date.now() > end) return l;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
