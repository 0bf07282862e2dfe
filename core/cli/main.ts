// The `berth` command: the VM's lifecycle, console, commands, settings, logs and reset, all
// through the supervisor's API on run/control.sock. Options are parsed with node:util's
// parseArgs (strict), so a mistyped option is an error rather than ignored.
import { parseArgs } from 'node:util';
import { dataPaths } from '../paths.ts';
import { consoleCommand } from './commands/console.ts';
import { dashboardCommand } from './commands/dashboard.ts';
import { execCommand } from './commands/exec.ts';
import { hostCommand } from './commands/host.ts';
import {
  restartCommand,
  startCommand,
  statusCommand,
  stopCommand,
  type CommandContext,
} from './commands/lifecycle.ts';
import { logsCommand } from './commands/logs.ts';
import { resetCommand } from './commands/reset.ts';
import { settingsCommand } from './commands/settings.ts';
import { sshCommand, vsockProxyCommand } from './commands/ssh.ts';
import { reportError, UsageError } from './output.ts';

export const USAGE = `usage: berth COMMAND [--json]
  start                      start the VM (and the background host if none runs)
  stop [--deadline SECONDS]  stop it gracefully; killed after the deadline (default 15)
  restart                    stop, then start
  status                     state, backend, uptime, pending changes, errors
  console                    attach this terminal to a shell in the VM (Ctrl-] detaches)
  exec -- CMD [ARG...]       run a command in the VM; its output and exit code are ours
  ssh [-- SSH-ARGS]          OpenSSH into the VM
  settings [get]             show the settings and what this host allows
  settings set KEY=VALUE... [--apply] [-m MESSAGE]
                             cpus=N memory=MiB disk=GiB storage-driver=overlay2|btrfs|vfs
  settings history [-n N]    every change, newest first
  settings rollback REVISION [--apply]
  logs [-n LINES] [-f]       the serial console log
  reset [--yes]              reset to factory: a new data disk, default settings
  dashboard                  serve the dashboard in browser mode and print its URL
  host [--start] [--dashboard]
                             host the supervisor in this terminal (what npm start runs)`;

const OPTIONS = {
  json: { type: 'boolean' },
  deadline: { type: 'string' },
  apply: { type: 'boolean' },
  message: { type: 'string', short: 'm' },
  lines: { type: 'string', short: 'n' },
  follow: { type: 'boolean', short: 'f' },
  yes: { type: 'boolean', short: 'y' },
  start: { type: 'boolean' },
  dashboard: { type: 'boolean' },
  'idle-exit': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  // Everything after `--` belongs to the command run in the VM (exec) or to ssh.
  const dashDash = argv.indexOf('--');
  const own = dashDash < 0 ? argv : argv.slice(0, dashDash);
  const passThrough = dashDash < 0 ? [] : argv.slice(dashDash + 1);
  let parsed;
  try {
    parsed = parseArgs({ args: own, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  const ctx: CommandContext = { paths: dataPaths(), json: values.json === true };
  const noArguments = () => {
    if (rest.length > 0)
      throw new UsageError(`${command} takes no arguments (got ${rest.join(' ')})`);
  };
  switch (command) {
    case 'start':
      noArguments();
      return startCommand(ctx);
    case 'stop':
      noArguments();
      return stopCommand(ctx, seconds(values.deadline));
    case 'restart':
      noArguments();
      return restartCommand(ctx, seconds(values.deadline));
    case 'status':
      noArguments();
      return statusCommand(ctx);
    case 'console':
      noArguments();
      return consoleCommand(ctx);
    case 'exec':
      if (rest.length > 0)
        throw new UsageError('exec: put the command after --: berth exec -- uname -a');
      return execCommand(ctx, passThrough);
    case 'ssh':
      noArguments();
      return sshCommand(ctx, passThrough);
    case 'vsock-proxy':
      return vsockProxyCommand(ctx, rest[0]);
    case 'settings':
      return settingsCommand(ctx, {
        action: rest[0],
        rest: rest.slice(1),
        apply: values.apply === true,
        message: values.message,
        limit: values.lines === undefined ? undefined : count(values.lines, '-n'),
      });
    case 'logs':
      noArguments();
      return logsCommand(ctx, {
        lines: values.lines === undefined ? 100 : count(values.lines, '-n'),
        follow: values.follow === true,
      });
    case 'reset':
      noArguments();
      return resetCommand(ctx, values.yes === true);
    case 'dashboard':
      noArguments();
      return dashboardCommand(ctx);
    case 'host':
      noArguments();
      return hostCommand(ctx, {
        start: values.start === true,
        idleExit: values['idle-exit'] === true,
        dashboard: values.dashboard === true,
      });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

function seconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) > 600) {
    throw new UsageError(
      `--deadline must be a number of seconds from 0 to 600 (got ${JSON.stringify(text)})`,
    );
  }
  return Math.round(Number(text) * 1000);
}

function count(text: string, option: string): number {
  if (!/^[1-9]\d{0,5}$/.test(text)) {
    throw new UsageError(
      `${option} must be a whole number from 1 to 999999 (got ${JSON.stringify(text)})`,
    );
  }
  return Number(text);
}

const json = process.argv.includes('--json');
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.exitCode = reportError(error, json);
}
