// Errors as every client sees them: a JSON-RPC error code, a message a user can act on, and data
// (the fields that were wrong, the serial log's tail). Codes -32xxx are JSON-RPC's own.
import type { FieldError } from './types.ts';

export const ErrorCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** The VM failed to start or stopped unexpectedly; data.serialTail says what the guest printed. */
  vmFailed: 1,
  /** The request cannot be done in the VM's current state (e.g. exec while stopped). */
  wrongState: 2,
  /** The settings store could not do what was asked (no such revision, damaged store). */
  settingsStore: 3,
  /** Another supervisor owns this data directory. */
  locked: 4,
  /** A guest session failed (the shell could not be opened, no such session). */
  session: 5,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ApiErrorData {
  /** Every field that was wrong, for invalid params and refused settings. */
  errors?: FieldError[];
  serialTail?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  readonly code: number;
  readonly data: ApiErrorData | undefined;

  constructor(code: number, message: string, data?: ApiErrorData) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.data = data;
  }

  static invalidParams(errors: FieldError[], context = 'invalid parameters'): ApiError {
    return new ApiError(
      ErrorCode.invalidParams,
      `${context}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
      { errors },
    );
  }
}
