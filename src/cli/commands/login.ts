// `hoist login` / `hoist logout`: credentials in Docker's config.json, checked against the registry first.
import type { Command } from 'commander';
import { readlinePromises } from '../../core/builtins.ts';
import { invalidArgument } from '../../core/errors.ts';
import { Hoist } from '../../hoist/hoist.ts';
import { session } from '../session.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function registerLoginCommands(program: Command): void {
  const cmd = program
    .command('login')
    .description('Log in to a registry (stores credentials in ~/.docker/config.json)')
    .argument('[server]', 'registry host', 'docker.io')
    .option('-u, --username <user>')
    .option('-p, --password <password>', 'prefer --password-stdin')
    .option('--password-stdin', 'read the password from standard input')
    .option('--plain-http', 'talk HTTP, not HTTPS, to the registry')
    .option('--insecure-skip-verify', 'do not verify the registry TLS certificate');
  cmd.action(
    async (
      server: string,
      flags: {
        username?: string;
        password?: string;
        passwordStdin?: boolean;
        plainHttp?: boolean;
        insecureSkipVerify?: boolean;
      },
      command: Command,
    ) => {
      let { username, password } = flags;
      if (flags.passwordStdin) {
        if (flags.password) throw invalidArgument('--password and --password-stdin are mutually exclusive');
        password = await readStdin();
      }
      if (!username || password === undefined) {
        if (!process.stdin.isTTY)
          throw invalidArgument('give --username and --password-stdin when not on a terminal');
        const rl = readlinePromises().createInterface({ input: process.stdin, output: process.stderr });
        username ??= await rl.question('Username: ');
        password ??= await rl.question('Password: ');
        rl.close();
      }
      await Hoist.login(
        server,
        { username, password },
        {
          plainHttp: flags.plainHttp === true,
          insecureSkipVerify: flags.insecureSkipVerify === true,
          config: session(command).config,
          log: session(command).log,
        },
      );
      process.stdout.write('Login Succeeded\n');
    },
  );
  program
    .command('logout')
    .description('Remove stored credentials for a registry')
    .argument('[server]', 'registry host', 'docker.io')
    .action(async (server: string) => {
      const removed = await Hoist.logout(server);
      process.stdout.write(
        removed ? `Removing login credentials for ${server}\n` : `Not logged in to ${server}\n`,
      );
    });
}
