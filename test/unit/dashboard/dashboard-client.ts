// What a dashboard page does, from Node: plain HTTP requests with any headers (fetch cannot set
// Host), and a WebSocket to /api as an ApiTransport, so an ApiClient can ride on it as the
// renderer's does.
import { request } from 'node:http';
import WebSocket from 'ws';
import type { ApiTransport } from '../../../core/api/client.ts';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends `path` exactly as given (no normalization), with the headers given. */
export function httpGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, headers: { Host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface WsOptions {
  origin?: string | null;
  headers?: Record<string, string>;
}

/** Opens a WebSocket; resolves when open, rejects with the refusal's status. */
export function openWebSocket(url: string, options: WsOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      ...(options.origin ? { origin: options.origin } : {}),
      headers: options.headers ?? {},
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => reject(new RefusedError(res.statusCode ?? 0, body)));
    });
    ws.once('error', reject);
  });
}

export class RefusedError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`refused with ${status}: ${body}`);
  }
}

/** The WebSocket as an ApiTransport; every received message is also kept, parsed. */
export class WsTransport implements ApiTransport {
  readonly messages: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString())));
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  send(text: string): void {
    this.ws.send(text);
  }

  onMessage(listener: (text: string) => void): void {
    this.ws.on('message', (data) => listener(data.toString()));
  }

  onClose(listener: (why: Error) => void): void {
    this.ws.once('close', (code) => listener(new Error(`the WebSocket closed (${code})`)));
  }

  close(): void {
    this.ws.close();
  }

  notifications(method: string): any[] {
    return this.messages.filter((m) => m.method === method).map((m) => m.params);
  }
}
