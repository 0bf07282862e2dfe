// berth ssh [-- SSH-ARGS]: the user's own OpenSSH into the VM, with Berth's per-install key and a
// ProxyCommand (`berth vsock-proxy 22`) that carries the connection over vsock. The guest's host
// key is remembered in the data directory's ssh/known_hosts, never in the user's.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectGuestPort } from '../../guest/hybrid-vsock.ts';
import { shellQuote } from './exec.ts';
import type { CommandContext } from './lifecycle.ts';

export async function sshCommand({ paths }: CommandContext, args: string[]): Promise<number> {
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const proxy = [process.execPath, ...process.execArgv, main, 'vsock-proxy', '22']
    .map(shellQuote)
    .join(' ');
  // ssh expands %-tokens in these options, so a literal % is written %%.
  const literal = (text: string) => text.replaceAll('%', '%%');
  const options = [
    '-i',
    literal(join(paths.ssh, 'id_ed25519')),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    literal(`ProxyCommand=env BERTH_HOME=${shellQuote(paths.home)} ${proxy}`),
    '-o',
    // Quoted: ssh reads this option as a list separated by spaces.
    literal(`UserKnownHostsFile="${join(paths.ssh, 'known_hosts')}"`),
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'HostKeyAlias=berth-vm',
    '-o',
    'LogLevel=ERROR',
  ];
  const child = spawn('ssh', [...options, 'root@berth', ...args], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(
        `berth: cannot run ssh (${error.message}); install OpenSSH's client (apt-get install openssh-client), or use berth console\n`,
      );
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** berth vsock-proxy PORT: stdin/stdout joined to a guest vsock port (for ssh's ProxyCommand). */
export async function vsockProxyCommand(
  { paths }: CommandContext,
  portText: string | undefined,
): Promise<number> {
  const port = Number(portText);
  if (!portText || !Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    process.stderr.write('berth: vsock-proxy needs a port number, e.g. 22\n');
    return 2;
  }
  let socket;
  try {
    socket = await connectGuestPort(join(paths.run, 'vsock.sock'), port);
  } catch (error) {
    process.stderr.write(`berth: ${(error as Error).message}; is the VM running (berth status)?\n`);
    return 1;
  }
  process.stdin.pipe(socket);
  socket.pipe(process.stdout);
  return new Promise((resolve) => {
    socket.once('close', () => resolve(0));
    socket.once('error', () => resolve(1));
  });
}
