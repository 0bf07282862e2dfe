// Where Berth keeps things. The data directory follows XDG on Linux ($XDG_DATA_HOME/berth, else
// ~/.local/share/berth) and BERTH_HOME overrides it; build outputs live in the checkout's build/.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed app) root: core/ sits directly below it. */
export const projectRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));

export const buildPaths = {
  root: join(projectRoot, 'build'),
  image: join(projectRoot, 'build/image'),
  guest: join(projectRoot, 'build/guest'),
  cache: join(projectRoot, 'build/cache'),
  imageSpec: join(projectRoot, 'assets/image/berth.yaml'),
};

export function dataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_HOME) return resolve(env.BERTH_HOME);
  const xdg = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : null;
  return join(xdg ?? join(env.HOME || homedir(), '.local/share'), 'berth');
}

/** The layout of a data directory (DESIGN.md, "Data directory"). */
export function dataPaths(home: string = dataDirectory()) {
  return {
    home,
    settings: join(home, 'settings'),
    disks: join(home, 'disks'),
    dataDisk: join(home, 'disks/data.img'),
    run: join(home, 'run'),
    controlSocket: join(home, 'run/control.sock'),
    debugShellSocket: join(home, 'run/debug-shell.sock'),
    dockerSocket: join(home, 'run/docker.sock'),
    logs: join(home, 'logs'),
    serialLog: join(home, 'logs/serial.log'),
    vmmLog: join(home, 'logs/vmm.log'),
    ssh: join(home, 'ssh'),
  };
}
