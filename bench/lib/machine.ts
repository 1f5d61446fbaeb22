import fs from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpu: string;
  memGiB: number;
  node: string;
  kernel: string;
  platform: string;
}

/** `nproc`, the CPU model (as `lscpu | grep 'Model name'` shows it), node version, memory. */
export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    platform: `${process.platform}-${process.arch}`,
  };
}
