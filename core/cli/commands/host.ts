// berth host [--start] [--dashboard] [--idle-exit]: hosts the supervisor in this process (what
// the desktop app does in Electron main). `npm start` runs it in the foreground with --start and
// --dashboard (the dashboard in browser mode, since Electron cannot run everywhere); the CLI
// starts it in the background with --idle-exit when no supervisor runs.
import { SupervisorHost } from '../../supervisor/host.ts';
import { BACKGROUND_IDLE_EXIT_MS } from '../control-client.ts';
import { say } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';

export async function hostCommand(
  { paths }: CommandContext,
  options: { start: boolean; idleExit: boolean; dashboard: boolean },
): Promise<number> {
  const log = (line: string) => say(`berth host: ${line}`);
  const host = await SupervisorHost.open({
    home: paths.home,
    log,
    ...(options.idleExit ? { idleExitMs: BACKGROUND_IDLE_EXIT_MS } : {}),
  });
  host.closeOnSignals(log);
  const { supervisor } = host;
  supervisor.on('state', ({ to, error, message }) => {
    log(`VM ${to}${message ? `: ${message}` : ''}`);
    if (error) log(`${error.message}\n${error.serialTail}`);
  });
  supervisor.on('progress', ({ step, percent }) => log(`${step} (${percent}%)`));
  log(
    `supervising ${paths.home}; control socket ${paths.controlSocket}, debug shell ${paths.debugShellSocket} (pid ${process.pid})`,
  );
  if (options.dashboard) {
    // Before the VM boots, so the page can show the boot's progress.
    try {
      const { url } = await host.dashboard();
      log(`dashboard at ${url}`);
      log(
        'the desktop app (Electron) is not available here, so the dashboard is served in browser mode: open this URL in your browser',
      );
    } catch (error) {
      log((error as Error).message);
    }
  }
  if (options.start) {
    try {
      await supervisor.start();
      log(
        'the VM is running: `berth console` or `nc -U run/debug-shell.sock` for a shell; Ctrl-C stops it',
      );
    } catch (error) {
      log(`the VM did not start: ${(error as Error).message}`);
    }
  }
  await host.done;
  log('stopped');
  return 0;
}
