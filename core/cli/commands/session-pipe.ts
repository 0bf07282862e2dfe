// Moves one guest session's bytes between this process's stdio and the API: stdin in (until EOF,
// or a detach byte), stdout and stderr out, and the session's exit as our exit code.
import { constants } from 'node:os';
import type { ApiClient } from '../../api/client.ts';

export interface PipeOptions {
  /** Forward stdin (default true); its end closes the session's input. */
  forwardStdin?: boolean;
  /** A byte in stdin that detaches instead of being sent (the console's Ctrl-]). */
  detachByte?: number;
}

export interface PipeResult {
  code: number;
  detached: boolean;
}

/** 128 + the signal's number, as a shell reports a command killed by it ("SIGTERM" or "TERM"). */
export function signalExitCode(signal: string): number {
  const name = (
    signal.startsWith('SIG') ? signal : `SIG${signal}`
  ) as keyof typeof constants.signals;
  return 128 + (constants.signals[name] ?? 0);
}

export function pipeSession(
  api: ApiClient,
  id: number,
  options: PipeOptions = {},
): Promise<PipeResult> {
  const { forwardStdin = true, detachByte } = options;
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let writes = Promise.resolve();
    const cleanups: (() => void)[] = [];
    const finish = (result: PipeResult) => {
      for (const cleanup of cleanups) cleanup();
      stdin.pause();
      // Let stdout drain before the caller exits.
      process.stdout.write('', () => resolve(result));
    };
    cleanups.push(
      api.on('session.output', (event) => {
        if (event.id !== id) return;
        const data = Buffer.from(event.data, 'base64');
        (event.stream === 'stderr' ? process.stderr : process.stdout).write(data);
      }),
      api.on('session.exit', (event) => {
        if (event.id !== id) return;
        const code = event.code ?? (event.signal ? signalExitCode(event.signal) : 1);
        void writes.then(() => finish({ code, detached: false }));
      }),
    );
    api.onClose((why) => reject(new Error(`lost the supervisor: ${why.message}`)));
    if (!forwardStdin) return;
    const onData = (data: Buffer) => {
      const at = detachByte === undefined ? -1 : data.indexOf(detachByte);
      const send = at < 0 ? data : data.subarray(0, at);
      if (send.length > 0) {
        writes = writes.then(() =>
          api.call('session.write', { id, data: send.toString('base64') }).then(
            () => {},
            () => {}, // the session ended meanwhile: its exit is reported on its own
          ),
        );
      }
      if (at >= 0) {
        void writes
          .then(() => api.call('session.close', { id }))
          .catch(() => {})
          .then(() => finish({ code: 0, detached: true }));
      }
    };
    const onEnd = () => {
      writes = writes.then(() => api.call('session.eof', { id }).then(() => {})).catch(() => {});
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    cleanups.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
    });
    stdin.resume();
  });
}
