import type { Command } from 'commander';

export function registerDrill(program: Command): void {
  program
    .command('drill')
    .summary('rehearse the whole chain in a private sandbox: are we ready?')
    .description(
      'rehearse detection and response in a private temporary sandbox, as any user, without touching the\n' +
        'host: build a small tree and policy, baseline, plant realistic tamperings (set-uid shell, cron job,\n' +
        'authorized_keys line, ld.so.preload, changed sshd_config, trojaned binary), check with evidence on alert,\n' +
        'verify the sealed bundle, restore the changed configuration, note and timeline — all with the real code.\n' +
        "The host's /proc is only read (by the evidence snapshot). The sandbox is removed afterwards.",
    )
    .option('--format <fmt>', 'text or json', 'text')
    .option('--keep', 'keep the sandbox (store, evidence, timeline.csv) and print where it is')
    .option('--tmp <dir>', 'create the sandbox in DIR (default: the system temp folder)')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ integ drill                        # a pass/fail line per step; exit 0 when ready
  $ integ drill --format json | jq '{planted, detected, evidence_verified, seconds}'

Exit: 0 every tampering detected and the evidence verified; 1 a step failed (see its line); 64 usage.`,
    )
    .action(async (flags: { format?: string; keep?: boolean; tmp?: string; log?: string }) => {
      const { makeContext, parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const ctx = await makeContext(flags.log);
      const { runDrill } = await import('../app/drill.js');
      const r = await runDrill({ keep: Boolean(flags.keep), tmp: flags.tmp }, ctx);
      if (format === 'json') {
        process.stdout.write(
          `${JSON.stringify({ schema: 'integ.drill/1', planted: r.planted, detected: r.detected, evidence_verified: r.evidence_verified, restored: r.restored, seconds: r.seconds, timeline_events: r.timeline_events, steps: r.steps, plants: r.plants, bundle: r.bundle, sandbox: r.sandbox, exit_code: r.exitCode }, null, 2)}\n`,
        );
      } else {
        const lines = r.steps.map((s) => `${s.ok ? 'PASS' : 'FAIL'}  ${s.step}: ${s.detail}`);
        for (const p of r.plants) lines.push(`  ${p.detected ? 'detected' : 'MISSED  '}  ${p.path}  (${p.name}${p.severity ? `, ${p.severity}` : ''})`);
        if (r.sandbox) lines.push(`sandbox kept: ${r.sandbox}`);
        lines.push(
          `${r.exitCode === 0 ? 'READY' : 'NOT READY'}: ${r.detected}/${r.planted} detected, evidence ${r.evidence_verified ? 'verified' : 'NOT verified'}, restore ${r.restored ? 'ok' : 'failed'}, ${r.seconds.toFixed(1)} s`,
        );
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      process.exitCode = r.exitCode;
    });
}
