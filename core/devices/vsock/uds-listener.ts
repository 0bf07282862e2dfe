// The device's host-facing Unix socket, created so that it is never reachable by anyone but our
// user: the socket is bound inside a fresh private directory (mode 0700, from mkdtemp), made 0600
// there, and only then renamed into place. No process-wide umask change, no window between
// bind() and chmod(). A stale socket file left by a dead process is removed first; a live one
// (something accepts connections on it) or a non-socket file at the path is an error, never
// silently replaced.
import { chmod, lstat, mkdtemp, rename, rm, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';

export interface UnixListener {
  server: Server;
  path: string;
  /** Stop listening and remove the socket file, if it is still ours. Idempotent. */
  close(): Promise<void>;
}

/** Does something accept connections at `path`? */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const settle = (alive: boolean): void => {
      socket.destroy();
      resolve(alive);
    };
    socket.once('connect', () => settle(true));
    socket.once('error', () => settle(false));
  });
}

/** Remove a stale socket file at `path`; throw if the path is taken by a live socket or a file. */
export async function removeStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!stats.isSocket()) throw new Error(`vsock: ${path} exists and is not a socket`);
  if (await probe(path)) throw new Error(`vsock: ${path} is in use by a running listener`);
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/**
 * Listen on a Unix socket at `path` (mode 0600, half-open connections allowed), calling
 * `onConnection` for every accepted socket.
 */
export async function listenUnix(
  path: string,
  onConnection: (socket: Socket) => void,
): Promise<UnixListener> {
  await removeStaleSocket(path);
  // A short temporary name, so the bind path is no longer than `path` for any basename of 10
  // characters or more (sun_path is 108 bytes).
  const privateDir = await mkdtemp(join(dirname(path), '.v'));
  const bindPath = join(privateDir, 's');
  const server = createServer({ allowHalfOpen: true }, onConnection);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(bindPath, 0o600);
    await rename(bindPath, path);
  } catch (error) {
    server.close();
    throw error;
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
  // From now on an 'error' on the listening server (EMFILE on accept, say) must not crash us.
  server.on('error', () => {});
  const { ino, dev } = await lstat(path);

  let closed: Promise<void> | null = null;
  return {
    server,
    path,
    close() {
      closed ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        try {
          const now = await lstat(path);
          if (now.ino === ino && now.dev === dev) await unlink(path);
        } catch {
          // Already gone (or replaced and then removed by someone else): nothing to do.
        }
      })();
      return closed;
    },
  };
}
