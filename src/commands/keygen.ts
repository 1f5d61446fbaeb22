import type { Command } from 'commander';
import type { KeygenDocument } from '../report/documents.js';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('create an Ed25519 key pair for signing baselines and evidence bundles')
    .requiredOption('--out <file>', 'where to write the private key; the public key goes to FILE.pub')
    .option('--format <fmt>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Examples:
  $ integ keygen --out /root/integ-signing.key
  $ sudo integ baseline --sign-key /root/integ-signing.key
  $ integ verify integ-web1-20261121T230000Z.tar.gz --verify-key integ-signing.key.pub

Writes FILE (private key, PKCS#8 PEM, mode 0600) and FILE.pub (public key, SPKI PEM,
0644) and prints the key id (first 16 hex digits of the SHA-256 of the public key).
Never overwrites: exit 73 if FILE or FILE.pub already exists. Keep the private key
safe; verifiers need only the .pub file.`,
    )
    .action(async (flags: { out: string; format?: string }) => {
      const { parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { generateKeyPair } = await import('../trust/keys.js');
      const { resolve } = await import('node:path');
      const made = await generateKeyPair(resolve(flags.out));
      process.stdout.write(
        format === 'json'
          ? JSON.stringify({
              schema: 'integ.keygen/1',
              private_key: made.privatePath,
              public_key: made.publicPath,
              key_id: made.keyId,
            } satisfies KeygenDocument) + '\n'
          : `private key: ${made.privatePath}  (mode 0600, keep it secret)\n` + `public key:  ${made.publicPath}\n` + `key id:      ${made.keyId}\n`,
      );
    });
}
