// A small client of the docker engine's HTTP API over a stream we are handed (the guest's docker
// socket through vsock): one request per connection, as the API allows, with Node's HTTP/1.1
// client doing the parsing (chunked bodies included). Only what the host side needs: a JSON GET
// and the /events stream.
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The API version of docker.io 20.10 in the guest; every path is prefixed with it. */
export const DOCKER_API_VERSION = 'v1.41';

const DEFAULT_TIMEOUT_MS = 10_000;

export type DockerConnect = () => Promise<Duplex>;

/** Ports[] of GET /containers/json. */
export interface DockerPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** What we read of GET /containers/json. */
export interface DockerContainer {
  Id: string;
  Names?: string[];
  Ports?: DockerPort[];
}

/** One object of the /events stream (the fields we read). */
export interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** Starts GET `path` (without the version prefix); resolves with the response's head. */
export function dockerGet(
  connect: DockerConnect,
  path: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({
      method: 'GET',
      path: `/${DOCKER_API_VERSION}${path}`,
      headers: { Host: 'docker', 'User-Agent': 'berth' },
      // No agent: the stream is made for this request and ends with it.
      createConnection: (_options, done) => {
        connect().then(
          (stream) => done(null, stream as Socket),
          (error: Error) => done(error, undefined as unknown as Socket),
        );
        return undefined as unknown as Socket;
      },
    });
    // A time limit on the answer's head only; a stream (events) may then be quiet for long.
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer to GET ${path} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

/** GET `path` and parse the JSON body; a status other than 200 is an error with the engine's message. */
export async function dockerGetJson<T>(
  connect: DockerConnect,
  path: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  const res = await dockerGet(connect, path, timeoutMs);
  const body = await readBody(res, timeoutMs);
  if (res.statusCode !== 200) throw new Error(engineError(path, res.statusCode, body));
  try {
    return JSON.parse(body) as T;
  } catch {
    throw new Error(`GET ${path}: the engine's answer is not JSON: ${body.slice(0, 200)}`);
  }
}

export function engineError(path: string, status: number | undefined, body: string): string {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not JSON: the body as it is
  }
  return `GET ${path}: the engine answered ${status}: ${message.slice(0, 300)}`;
}

export function readBody(res: IncomingMessage, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      res.destroy();
      reject(new Error(`the engine's answer did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.complete) reject(new Error('the engine closed the connection mid-answer'));
    });
  });
}

/**
 * Splits the /events body (JSON objects, one a line, as the engine's encoder writes them) into
 * events. A line that does not parse is skipped: one odd event must not end the watch.
 */
export class EventLineSplitter {
  private buffered = '';

  push(text: string): DockerEvent[] {
    this.buffered += text;
    const events: DockerEvent[] = [];
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).trim();
      this.buffered = this.buffered.slice(newline + 1);
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as DockerEvent);
      } catch {
        // skipped
      }
    }
    // An event is small; a "line" this long is not one: drop it rather than grow without end.
    if (this.buffered.length > 1 << 20) this.buffered = '';
    return events;
  }
}
