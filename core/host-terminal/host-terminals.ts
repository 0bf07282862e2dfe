// The host terminal: shells on this machine (not in the VM) for one API client, each on a pty
// from node-pty. Bytes travel as base64 both ways, like guest sessions. Everything a client
// opened is hung up when it goes away, so a closed browser tab never leaves shells behind.
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import type { IPty } from 'node-pty';
import { ApiError, ErrorCode } from '../api/errors.ts';
import type { ParamsOf } from '../api/methods.ts';
import type { TerminalExit, TerminalOutput } from '../api/types.ts';
import type { HostTerminalsForClient } from '../supervisor/api-dispatch.ts';

/** How many host terminals one client may hold: generous for tabs, bounded against a runaway. */
export const MAX_TERMINALS_PER_CLIENT = 8;
/** A shell that ignores the hang-up is killed this long after it. */
const HANGUP_GRACE_MS = 2000;

/**
 * node-pty, loaded on the first open rather than with this file: every `berth` command loads the
 * host's code, and none of them should fail (or wait) for a native module only terminals need.
 * It is CommonJS, so require() gives its module.exports the same way under Node and tsx (their
 * dynamic import() wrap it differently).
 */
let nodePty: typeof NodePty | null = null;
function loadNodePty(): typeof NodePty {
  try {
    nodePty ??= createRequire(import.meta.url)('node-pty') as typeof NodePty;
    return nodePty;
  } catch (error) {
    throw new ApiError(
      ErrorCode.session,
      `the host terminal is unavailable: node-pty did not load (${(error as Error).message}); run npm run setup`,
    );
  }
}

export interface TerminalSink {
  output(event: TerminalOutput): void;
  exit(event: TerminalExit): void;
}

/** Back-pressure from the client's transport: the ptys pause while it cannot keep up. */
export interface TerminalFlow {
  readonly writable: boolean;
  onDrain(listener: () => void): void;
}

export interface HostTerminalOptions {
  /** The shell to run (default $SHELL, else /bin/sh), as a login shell. */
  shell?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  maxPerClient?: number;
}

export class HostTerminals implements HostTerminalsForClient {
  private nextId = 1;
  private readonly terminals = new Map<number, IPty>();
  private closed = false;

  constructor(
    private readonly sink: TerminalSink,
    private readonly flow: TerminalFlow | null = null,
    private readonly options: HostTerminalOptions = {},
  ) {
    flow?.onDrain(() => {
      for (const terminal of this.terminals.values()) terminal.resume();
    });
  }

  async open(params: ParamsOf<'terminal.open'>): Promise<{ id: number }> {
    const pty = loadNodePty();
    if (this.closed) throw new ApiError(ErrorCode.session, 'the client went away');
    const max = this.options.maxPerClient ?? MAX_TERMINALS_PER_CLIENT;
    if (this.terminals.size >= max) {
      throw new ApiError(
        ErrorCode.session,
        `this client already has ${max} host terminals open; close one first`,
      );
    }
    const env = this.options.env ?? process.env;
    const shell = this.options.shell ?? (env.SHELL || '/bin/sh');
    let terminal: IPty;
    try {
      // node-pty forks before it execs, so a missing shell would only show as a quick exit.
      if (shell.includes('/')) accessSync(shell, constants.X_OK);
      // `-l`: a login shell reads the user's profile, as a terminal app's first shell does.
      // utf8 (node-pty's default) also sets IUTF8 on the pty, so line editing erases whole
      // characters; output is re-encoded to the same bytes below.
      terminal = pty.spawn(shell, ['-l'], {
        name: 'xterm-256color',
        cols: params.cols,
        rows: params.rows,
        cwd: this.options.cwd ?? (env.HOME || homedir()),
        env: shellEnv(env),
      });
    } catch (error) {
      throw new ApiError(
        ErrorCode.session,
        `cannot start the shell ${shell}: ${(error as Error).message}`,
      );
    }
    const id = this.nextId++;
    this.terminals.set(id, terminal);
    this.wire(id, terminal);
    return { id };
  }

  write(params: ParamsOf<'terminal.write'>): Record<string, never> {
    this.terminal(params.id).write(Buffer.from(params.data, 'base64'));
    return {};
  }

  resize(params: ParamsOf<'terminal.resize'>): Record<string, never> {
    this.terminal(params.id).resize(params.cols, params.rows);
    return {};
  }

  close(params: ParamsOf<'terminal.close'>): Record<string, never> {
    hangUp(this.terminal(params.id));
    return {};
  }

  /** The client went away: hang up every shell it opened; no more opens. */
  closeAll(): void {
    this.closed = true;
    for (const terminal of this.terminals.values()) hangUp(terminal);
    this.terminals.clear();
  }

  get count(): number {
    return this.terminals.size;
  }

  private terminal(id: number): IPty {
    const terminal = this.terminals.get(id);
    if (!terminal) {
      throw new ApiError(
        ErrorCode.session,
        `no host terminal ${id} (it has ended, or was never opened here)`,
      );
    }
    return terminal;
  }

  private wire(id: number, terminal: IPty): void {
    terminal.onData((text) => {
      if (this.terminals.get(id) !== terminal) return; // the client went away: drop the tail
      this.sink.output({ id, data: Buffer.from(text, 'utf8').toString('base64') });
      if (this.flow && !this.flow.writable) terminal.pause();
    });
    terminal.onExit(({ exitCode, signal }) => {
      if (this.terminals.get(id) !== terminal) return; // the client went away: nobody to tell
      this.terminals.delete(id);
      // A shell killed by a signal has no exit code; node-pty reports 0 with the signal.
      this.sink.exit({ id, code: signal ? null : exitCode });
    });
  }
}

/** SIGHUP, as when a terminal window closes; SIGKILL if the shell is still there later. */
function hangUp(terminal: IPty): void {
  let exited = false;
  terminal.onExit(() => (exited = true));
  try {
    terminal.kill('SIGHUP');
  } catch {
    return; // already gone
  }
  setTimeout(() => {
    if (exited) return;
    try {
      terminal.kill('SIGKILL');
    } catch {
      // gone meanwhile
    }
  }, HANGUP_GRACE_MS).unref();
}

/**
 * The user's environment for the shell, minus what only made sense for this process: npm's
 * variables (when run by `npm start`) would point the user's own npm at Berth's checkout.
 */
function shellEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !/^npm_/i.test(key) && key !== 'INIT_CWD') result[key] = value;
  }
  result.TERM = 'xterm-256color';
  result.COLORTERM = 'truecolor';
  return result;
}
