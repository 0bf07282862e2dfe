// How the CLI speaks: human sentences on a terminal by default, one JSON document with --json for
// scripts. Errors say what was wrong and what to do; a failed VM shows the serial log's tail.
import { ApiError } from '../api/errors.ts';
import type { VmStatus } from '../api/types.ts';
import { FIELD_ALIASES } from '../settings/schema.ts';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error for a human (or as JSON), returning the exit code to use. */
export function reportError(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    process.stderr.write(`berth: ${error.message}\n`);
    return 2;
  }
  const api = error instanceof ApiError ? error : null;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ error: { code: api?.code ?? null, message: (error as Error).message, data: api?.data } }, null, 2)}\n`,
    );
    return 1;
  }
  process.stderr.write(`berth: ${(error as Error).message}\n`);
  const tail = api?.data?.serialTail;
  if (typeof tail === 'string' && tail.trim()) {
    process.stderr.write(`berth: the last lines of the VM's serial console:\n${indent(tail)}\n`);
  }
  return 1;
}

export function describeStatus(status: VmStatus): string {
  const lines = [`state:    ${status.state} (since ${new Date(status.since).toLocaleString()})`];
  if (status.uptimeMs !== undefined) lines.push(`uptime:   ${formatDuration(status.uptimeMs)}`);
  if (status.backend) lines.push(`backend:  ${status.backend} (${status.backendReason})`);
  if (status.vmmPid !== undefined) lines.push(`vmm pid:  ${status.vmmPid}`);
  if (status.pendingRestart.length > 0) {
    lines.push(
      `pending:  ${status.pendingRestart.map((f) => FIELD_ALIASES[f]).join(', ')} changed; restart to apply (berth restart)`,
    );
  }
  if (status.lastStop?.message) lines.push(`last stop: ${status.lastStop.message}`);
  lines.push(`data:     ${status.dataDirectory}`);
  if (status.engine) {
    const { socket, context, publishedPorts } = status.engine;
    lines.push(`docker:   unix://${socket} (docker --context ${context} ...)`);
    for (const { port, privatePort, containerName } of publishedPorts) {
      lines.push(`port:     127.0.0.1:${port} -> ${privatePort}/tcp (${containerName})`);
    }
  }
  if (status.error) {
    lines.push(`error:    ${status.error.message}`);
    if (status.error.serialTail.trim()) {
      lines.push('serial console, last lines:', indent(status.error.serialTail));
    }
    lines.push(
      '          `berth restart` starts it again; `berth logs` shows the whole serial log',
    );
  }
  return lines.join('\n');
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
