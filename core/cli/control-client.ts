// The CLI's way to the supervisor: the control socket, speaking the API through ApiClient. When
// no supervisor runs, the first command that needs one starts the headless host in the
// background (`berth host --idle-exit`), so `berth start` works with or without the desktop app.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ApiClient, type ApiTransport } from '../api/client.ts';
import { MAX_MESSAGE_BYTES } from '../api/jsonrpc.ts';
import { readTail } from '../supervisor/log-tail.ts';
import { LineReader } from '../supervisor/line-reader.ts';
import type { dataPaths } from '../paths.ts';

type Paths = ReturnType<typeof dataPaths>;

const HOST_START_DEADLINE_MS = 30_000;
/** The background host exits this long after the VM stopped and the last client left. */
export const BACKGROUND_IDLE_EXIT_MS = 5_000;

/** Connects to a running supervisor; null when none listens on the socket. */
export async function connectControl(path: string): Promise<ApiClient | null> {
  const socket = await new Promise<Socket | null>((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(null);
      else reject(new Error(`cannot reach the supervisor at ${path}: ${error.message}`));
    });
  });
  return socket ? new ApiClient(socketTransport(socket)) : null;
}

/**
 * The running supervisor, for commands that need a running VM (console, exec): null, with the
 * user told how to start it, when there is none.
 */
export async function connectForRunningVm(path: string): Promise<ApiClient | null> {
  const api = await connectControl(path);
  if (!api) process.stderr.write('berth: the VM is not running; start it with `berth start`\n');
  return api;
}

/** A supervisor to talk to: the running one, or a background host started now. */
export async function ensureSupervisor(paths: Paths): Promise<ApiClient> {
  const running = await connectControl(paths.controlSocket);
  if (running) return running;
  mkdirSync(paths.logs, { recursive: true, mode: 0o700 });
  const hostLog = `${paths.logs}/host.log`;
  const out = openSync(hostLog, 'a', 0o600);
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, main, 'host', '--idle-exit'], {
    detached: true, // its own session: closing this terminal does not stop the VM
    stdio: ['ignore', out, out],
    env: { ...process.env, BERTH_HOME: paths.home },
  });
  closeSync(out);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
  child.unref();
  const deadline = Date.now() + HOST_START_DEADLINE_MS;
  while (Date.now() < deadline) {
    const client = await connectControl(paths.controlSocket);
    if (client) return client;
    if (exited) {
      // Another CLI may have won the race to start a host: that one is as good as ours.
      const other = await connectControl(paths.controlSocket);
      if (other) return other;
      throw new Error(
        `the Berth host process ended (${exited}) before it was ready:\n${readTail(hostLog, 15)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `the Berth host did not answer within ${HOST_START_DEADLINE_MS / 1000} s; see ${hostLog}`,
  );
}

function socketTransport(socket: Socket): ApiTransport {
  return {
    send: (text) => void socket.write(`${text}\n`),
    onMessage: (listener) => {
      const lines = new LineReader(MAX_MESSAGE_BYTES, listener);
      socket.on('data', (data) => {
        if (!lines.push(data)) socket.destroy(new Error('the supervisor sent an overlong message'));
      });
    },
    onClose: (listener) => {
      let why: Error | null = null;
      socket.on('error', (error) => (why = error));
      socket.on('close', () => listener(why ?? new Error('the supervisor closed the connection')));
    },
    close: () => socket.end(),
  };
}
