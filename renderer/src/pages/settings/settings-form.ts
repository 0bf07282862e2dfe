// The settings form's data: what the inputs hold (text, as typed), what a submit sends (only the
// fields that changed), and where each of the server's messages belongs. The server's schema is
// the judge of every value, so nothing here refuses input; it only shapes it.
import type { Settings, SettingsField, SettingsLimits } from '../../../../core/api/types.ts';

export type FormValues = Record<SettingsField, string>;

export const FORM_FIELDS: readonly SettingsField[] = [
  'cpus',
  'memoryMiB',
  'diskGiB',
  'storageDriver',
];

export function formValues(settings: Settings): FormValues {
  return {
    cpus: String(settings.cpus),
    memoryMiB: String(settings.memoryMiB),
    diskGiB: String(settings.diskGiB),
    storageDriver: settings.storageDriver,
  };
}

/** The fields whose input differs from the settings, as the values settings.set takes. */
export function changedFields(values: FormValues, settings: Settings): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  for (const field of FORM_FIELDS) {
    const text = values[field].trim();
    if (text === String(settings[field])) continue;
    if (field === 'storageDriver') changes[field] = text;
    else {
      // A number when it reads as one; otherwise the text as typed, for the schema to name.
      const number = Number(text);
      changes[field] = text !== '' && Number.isFinite(number) ? number : text;
    }
  }
  return changes;
}

export function isDirty(values: FormValues, settings: Settings): boolean {
  return Object.keys(changedFields(values, settings)).length > 0;
}

/**
 * Sorts the server's field errors: the form's own fields (named as in settings.set, or with the
 * "changes." prefix params checking uses) go beside their input, anything else above the form.
 */
export function placeErrors(errors: Record<string, string>): {
  fields: Partial<Record<SettingsField, string>>;
  other: string[];
} {
  const fields: Partial<Record<SettingsField, string>> = {};
  const other: string[] = [];
  for (const [name, message] of Object.entries(errors)) {
    const field = name.replace(/^changes\./, '') as SettingsField;
    if (FORM_FIELDS.includes(field)) fields[field] = message;
    else other.push(`${name}: ${message}`);
  }
  return { fields, other };
}

/** The hint under each input, from this host's limits. */
export function fieldHints(limits: SettingsLimits): Record<SettingsField, string> {
  return {
    cpus: `${limits.cpus.min} to ${limits.cpus.max} on this machine`,
    memoryMiB: `${limits.memoryMiB.min} to ${limits.memoryMiB.max} MiB, in steps of ${limits.memoryMiB.step}`,
    diskGiB: `${limits.diskGiB.min} to ${limits.diskGiB.max} GiB; a disk can grow, never shrink`,
    storageDriver: 'How the container engine stores image layers',
  };
}
