#!/usr/bin/env node
// What `npm start` runs after setup: the desktop app when Electron's binary and a display are
// there, else Berth headless (the host in this terminal: the VM boots on the backend the probe
// chose and the dashboard is served in browser mode on 127.0.0.1). It says which, and why.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function electronBinary() {
  const pathFile = join(root, 'node_modules/electron/path.txt');
  if (!existsSync(pathFile)) return null;
  const binary = join(root, 'node_modules/electron/dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : null;
}

const electron = electronBinary();
const display = process.env.DISPLAY || process.env.WAYLAND_DISPLAY;
let command;
if (electron && display) {
  const built = spawnSync(process.execPath, [join(root, 'scripts/build-electron.mjs')], {
    stdio: 'inherit',
  });
  if (built.status !== 0) process.exit(built.status ?? 1);
  console.log('start: running the desktop app (Electron)');
  command = [electron, [root]];
} else {
  const why = electron
    ? 'no display ($DISPLAY/$WAYLAND_DISPLAY unset)'
    : "Electron's binary is not installed";
  console.log(`start: ${why}; running Berth headless with the dashboard in browser mode`);
  command = [join(root, 'bin/berth'), ['host', '--start', '--dashboard']];
}
const child = spawn(command[0], command[1], { stdio: 'inherit' });
// Ctrl-C reaches the child through the terminal's process group; wait for its graceful stop.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
