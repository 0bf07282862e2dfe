// The VM's resources as a form. Values go to the server as typed; its schema's messages come back
// beside each field and nothing changes. "Save" stores them for the next start, "Apply & restart"
// also restarts a running VM so they take effect now.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { Settings, SettingsField, SettingsView } from '../../../../core/api/types.ts';
import { useLink, useServices, useVm } from '../../services.ts';
import { notify } from '../../state/stores.ts';
import {
  changedFields,
  fieldHints,
  formValues,
  isDirty,
  placeErrors,
  type FormValues,
} from './settings-form.ts';

const LABELS: Record<SettingsField, string> = {
  cpus: 'CPUs',
  memoryMiB: 'Memory (MiB)',
  diskGiB: 'Disk (GiB)',
  storageDriver: 'Storage driver',
};

type Busy = 'save' | 'apply' | null;

export function SettingsForm({ view }: { view: SettingsView }) {
  const { actions, stores } = useServices();
  const vmAction = useVm((s) => s.action);
  const connected = useLink((s) => s.link.state === 'connected');
  const [values, setValues] = useState<FormValues>(() => formValues(view.settings));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<Busy>(null);
  const shown = useRef<Settings>(view.settings);

  // New settings from elsewhere (the CLI, a rollback) replace the inputs unless the user is editing.
  useEffect(() => {
    setValues((current) => (isDirty(current, shown.current) ? current : formValues(view.settings)));
    shown.current = view.settings;
  }, [view.settings]);

  const submit = async (apply: boolean) => {
    const changes = changedFields(values, view.settings);
    setErrors({});
    if (Object.keys(changes).length === 0) {
      if (apply && view.pendingRestart.length > 0) {
        setBusy('apply');
        await actions.lifecycle('restart');
        setBusy(null);
      } else notify(stores, 'info', 'The settings already have these values.');
      return;
    }
    setBusy(apply ? 'apply' : 'save');
    const outcome = await actions.saveSettings(changes, apply);
    setBusy(null);
    if (!outcome.ok) setErrors(outcome.fields);
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit(false);
  };

  const { fields: fieldErrors, other } = placeErrors(errors);
  const hints = fieldHints(view.limits);
  const disabled = busy !== null || vmAction !== null || !connected;
  const set = (field: SettingsField) => (value: string) =>
    setValues((current) => ({ ...current, [field]: value }));

  const numberField = (field: 'cpus' | 'memoryMiB' | 'diskGiB', step: number) => {
    const limits = view.limits[field];
    return (
      <Field field={field} hint={hints[field]} error={fieldErrors[field]}>
        {(describedBy) => (
          <input
            id={`field-${field}`}
            type="number"
            inputMode="numeric"
            min={limits.min}
            max={limits.max}
            step={step}
            value={values[field]}
            onChange={(event) => set(field)(event.target.value)}
            aria-invalid={fieldErrors[field] ? true : undefined}
            aria-describedby={describedBy}
          />
        )}
      </Field>
    );
  };

  return (
    <form
      className="panel settings-form"
      noValidate
      onSubmit={onSubmit}
      aria-labelledby="resources-title"
    >
      <h2 id="resources-title" className="panel-title">
        Resources
      </h2>
      {other.length > 0 && (
        <div className="form-error" role="alert">
          {other.map((message) => (
            <p key={message}>{message}</p>
          ))}
        </div>
      )}
      {numberField('cpus', 1)}
      {numberField('memoryMiB', view.limits.memoryMiB.step)}
      {numberField('diskGiB', 1)}
      <Field field="storageDriver" hint={hints.storageDriver} error={fieldErrors.storageDriver}>
        {(describedBy) => (
          <select
            id="field-storageDriver"
            value={values.storageDriver}
            onChange={(event) => set('storageDriver')(event.target.value)}
            aria-invalid={fieldErrors.storageDriver ? true : undefined}
            aria-describedby={describedBy}
          >
            {view.limits.storageDrivers.map((driver) => (
              <option key={driver} value={driver}>
                {driver}
              </option>
            ))}
          </select>
        )}
      </Field>
      <div className="form-actions">
        <div className="button-row">
          <button type="submit" className="button" disabled={disabled}>
            Save
          </button>
          <button
            type="button"
            className="button button-primary"
            disabled={disabled}
            onClick={() => void submit(true)}
          >
            Apply &amp; restart
          </button>
        </div>
        <span className="muted" role="status">
          {busy === 'apply'
            ? 'Applying: the VM restarts if it is running…'
            : busy === 'save'
              ? 'Saving…'
              : ''}
        </span>
      </div>
    </form>
  );
}

function Field({
  field,
  hint,
  error,
  children,
}: {
  field: SettingsField;
  hint: string;
  error: string | undefined;
  children: (describedBy: string) => ReactNode;
}) {
  const describedBy = error ? `error-${field} hint-${field}` : `hint-${field}`;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={`field-${field}`}>{LABELS[field]}</label>
      {children(describedBy)}
      <p className="field-hint" id={`hint-${field}`}>
        {hint}
      </p>
      {error && (
        <p className="field-error" id={`error-${field}`} data-testid={`error-${field}`}>
          {error}
        </p>
      )}
    </div>
  );
}
