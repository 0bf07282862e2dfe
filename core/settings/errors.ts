// The two ways a settings operation fails: the change itself is not allowed (the user can fix
// it; every field's problem is listed), or the store cannot do what was asked.
import type { FieldError } from './schema.ts';

export class SettingsValidationError extends Error {
  readonly errors: readonly FieldError[];

  /** `context` leads the message, e.g. "cannot roll back to revision 3". */
  constructor(errors: readonly FieldError[], context = 'invalid settings') {
    super(`${context}: ${errors.map((e) => e.message).join('; ')}`);
    this.name = 'SettingsValidationError';
    this.errors = errors;
  }
}

export class SettingsStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsStoreError';
  }
}
