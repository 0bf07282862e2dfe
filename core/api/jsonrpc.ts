// JSON-RPC 2.0 messages as Berth sends them: one JSON object per line on the control socket (and
// one per frame on the browser's WebSocket). Batches are not used by any client and are refused.
import { ApiError, ErrorCode, type ApiErrorData } from './errors.ts';

export type RequestId = number | string;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: unknown;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: unknown;
}

export interface JsonRpcSuccess {
  jsonrpc: '2.0';
  id: RequestId;
  result: unknown;
}

export interface JsonRpcFailure {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string; data?: ApiErrorData };
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;

/** The longest line either side accepts: a 1 MiB session write in base64, with room to spare. */
export const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;

/** Parses what a client sent; throws ApiError (with the request's id when it has one). */
export function parseRequest(text: string): JsonRpcRequest | JsonRpcNotification {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (error) {
    throw new RequestError(null, ErrorCode.parseError, `not JSON: ${(error as Error).message}`);
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new RequestError(
      null,
      ErrorCode.invalidRequest,
      'a request must be a JSON object (batches are not supported)',
    );
  }
  const { jsonrpc, id, method } = message as Record<string, unknown>;
  const validId = id === undefined || typeof id === 'string' || Number.isSafeInteger(id);
  const replyId = validId && id !== undefined ? (id as RequestId) : null;
  if (jsonrpc !== '2.0') {
    throw new RequestError(replyId, ErrorCode.invalidRequest, 'jsonrpc must be "2.0"');
  }
  if (!validId) {
    throw new RequestError(null, ErrorCode.invalidRequest, 'id must be a string or a whole number');
  }
  if (typeof method !== 'string' || method.length === 0) {
    throw new RequestError(replyId, ErrorCode.invalidRequest, 'method must be a non-empty string');
  }
  return message as JsonRpcRequest | JsonRpcNotification;
}

export function isRequest(
  message: JsonRpcRequest | JsonRpcNotification,
): message is JsonRpcRequest {
  return 'id' in message && message.id !== undefined;
}

/** A request that could not be parsed, with the id to answer to (null when it has none). */
export class RequestError extends ApiError {
  constructor(
    readonly id: RequestId | null,
    code: number,
    message: string,
  ) {
    super(code, message);
  }
}

export function success(id: RequestId, result: unknown): JsonRpcSuccess {
  return { jsonrpc: '2.0', id, result };
}

export function failure(id: RequestId | null, error: unknown): JsonRpcFailure {
  if (error instanceof ApiError) {
    const body: JsonRpcFailure['error'] = { code: error.code, message: error.message };
    if (error.data !== undefined) body.data = error.data;
    return { jsonrpc: '2.0', id, error: body };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { jsonrpc: '2.0', id, error: { code: ErrorCode.internalError, message } };
}

export function notification(method: string, params: unknown): JsonRpcNotification {
  return { jsonrpc: '2.0', method, params };
}
